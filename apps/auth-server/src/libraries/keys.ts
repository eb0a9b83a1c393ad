import type { Database } from "@tessera/db";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from "jose";
import type { Config } from "../config/index.ts";
import type { CoreContext } from "../context.ts";
import { AppError } from "../errors/index.ts";
import {
  findActiveSigningKey,
  insertSigningKey,
  lockSigningKeys,
  retireActiveSigningKeys,
  type SigningAlg,
  type SigningKeyRow,
  selectAllSigningKeys,
  selectLiveSigningKeys,
} from "../queries/keys.ts";
import { addSeconds } from "./clock.ts";
import { decrypt, encrypt } from "./crypto.ts";

export type { SigningAlg } from "../queries/keys.ts";

/** What signing needs: a subset of `app.ctx`. */
/** The only algorithms Tessera signs or accepts. Pinned: `none`, HS* and anything else are refused outright. */
export const SIGNING_ALGS: readonly SigningAlg[] = ["RS256", "ES256", "EdDSA"];

/** How long any Tessera-signed JWT may live; signJwt refuses longer lifetimes so retired keys can be dropped. */
export function maxTokenLifetimeSeconds(config: Config): number {
  return Math.max(config.tokens.idTokenTtlSeconds, config.tokens.accessTokenTtlSeconds, 300);
}

/**
 * A retired key stays in the JWKS until every token it signed has expired: the longest token lifetime plus a minute
 * for clock skew between Tessera and the verifier. After that it is no longer published nor accepted.
 */
export function keyPublishWindowSeconds(config: Config): number {
  return maxTokenLifetimeSeconds(config) + 60;
}

/**
 * Keys are read from the database at most once a minute per process (and at once on an unknown `kid`, at most once a
 * second, so garbage kids cannot turn into a query each), so signing and verifying do no query per token. A key rotated by another instance or the CLI is therefore
 * used here within a minute; until then this instance keeps signing with the retired key, which stays published.
 */
const CACHE_TTL_MS = 60_000;
const MISS_REFRESH_MIN_MS = 1_000;
/** Verifier clock skew allowance for exp/nbf on Tessera's own tokens. */
const CLOCK_TOLERANCE_SECONDS = 5;
const MAX_JWT_LENGTH = 16 * 1024;

interface LoadedKey {
  row: SigningKeyRow;
  publicKey?: Promise<CryptoKey>;
  privateKey?: Promise<CryptoKey>;
}

interface KeyCache {
  loadedAtMs: number;
  keys: Map<string, LoadedKey>;
  pending?: Promise<void>;
}

const caches = new WeakMap<Database, KeyCache>();

function cacheOf(deps: CoreContext): KeyCache {
  let cache = caches.get(deps.db);
  if (!cache) {
    cache = { loadedAtMs: Number.NEGATIVE_INFINITY, keys: new Map() };
    caches.set(deps.db, cache);
  }
  return cache;
}

async function reload(deps: CoreContext, cache: KeyCache): Promise<void> {
  if (!cache.pending) {
    cache.pending = (async () => {
      const since = addSeconds(deps.clock.now(), -keyPublishWindowSeconds(deps.config));
      const rows = await selectLiveSigningKeys(deps.db, since);
      const next = new Map<string, LoadedKey>();
      for (const row of rows) {
        const previous = cache.keys.get(row.kid);
        // Keep already-imported CryptoKeys; the row itself may have changed (retired).
        next.set(row.kid, { ...previous, row });
      }
      cache.keys = next;
      cache.loadedAtMs = performance.now();
    })().finally(() => {
      cache.pending = undefined;
    });
  }
  await cache.pending;
}

async function loadedKeys(deps: CoreContext, force = false): Promise<KeyCache> {
  const cache = cacheOf(deps);
  if (force || performance.now() - cache.loadedAtMs > CACHE_TTL_MS) await reload(deps, cache);
  return cache;
}

function isPublished(row: SigningKeyRow, now: Date, config: Config): boolean {
  if (!row.retiredAt) return true;
  return addSeconds(row.retiredAt, keyPublishWindowSeconds(config)).getTime() > now.getTime();
}

function sealAad(kid: string): string {
  return `tessera:signing-key:${kid}`;
}

async function generateSigningKey(
  config: Config,
  alg: SigningAlg,
): Promise<{ kid: string; publicJwk: JWK; sealed: string }> {
  const { publicKey, privateKey } =
    alg === "EdDSA"
      ? await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true })
      : await generateKeyPair(alg, { extractable: true, ...(alg === "RS256" ? { modulusLength: 2048 } : {}) });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub, "sha256");
  const publicJwk: JWK = { ...pub, kid, alg, use: "sig" };
  const privateJwk = await exportJWK(privateKey);
  // The private key exists in the database only as AES-256-GCM ciphertext bound to its kid.
  const sealed = encrypt(config.masterKey, JSON.stringify(privateJwk), sealAad(kid));
  return { kid, publicJwk, sealed };
}

/**
 * The active key for an algorithm, creating it if none exists. Creation runs in a transaction holding an advisory
 * lock and re-checks inside it, so instances starting together create exactly one active key.
 */
export async function ensureSigningKey(
  deps: CoreContext,
  alg: SigningAlg = deps.config.tokens.signingAlg,
): Promise<SigningKeyRow> {
  const existing = await findActiveSigningKey(deps.db, alg);
  if (existing) return existing;
  const created = await deps.db.transaction(async (tx) => {
    await lockSigningKeys(tx);
    const raced = await findActiveSigningKey(tx, alg);
    if (raced) return raced;
    const { kid, publicJwk, sealed } = await generateSigningKey(deps.config, alg);
    const now = deps.clock.now();
    return insertSigningKey(tx, {
      kid,
      alg,
      publicJwk,
      privateKeyEncrypted: sealed,
      createdAt: now,
      activatedAt: now,
    });
  });
  await loadedKeys(deps, true);
  return created;
}

/**
 * Makes a new key active and retires the current one of the same algorithm. The retired key stays published (and
 * accepted) for `keyPublishWindowSeconds` so tokens it signed keep verifying until they expire.
 */
export async function rotateSigningKey(
  deps: CoreContext,
  alg: SigningAlg = deps.config.tokens.signingAlg,
): Promise<{ active: SigningKeyRow; retired: string[] }> {
  const result = await deps.db.transaction(async (tx) => {
    await lockSigningKeys(tx);
    const now = deps.clock.now();
    const retired = await retireActiveSigningKeys(tx, alg, now);
    const { kid, publicJwk, sealed } = await generateSigningKey(deps.config, alg);
    const active = await insertSigningKey(tx, {
      kid,
      alg,
      publicJwk,
      privateKeyEncrypted: sealed,
      createdAt: now,
      activatedAt: now,
    });
    return { active, retired };
  });
  await loadedKeys(deps, true);
  return result;
}

export type KeyStatus = "active" | "retired" | "expired";

/** Every key with its status: active (signing), retired (still published), expired (no longer published). */
export async function listSigningKeys(deps: CoreContext): Promise<Array<{ row: SigningKeyRow; status: KeyStatus }>> {
  const now = deps.clock.now();
  const rows = await selectAllSigningKeys(deps.db);
  return rows.map((row) => ({
    row,
    status: !row.retiredAt ? "active" : isPublished(row, now, deps.config) ? "retired" : "expired",
  }));
}

async function signingKeyFor(deps: CoreContext, alg: SigningAlg): Promise<{ kid: string; key: CryptoKey }> {
  const cache = await loadedKeys(deps);
  const pick = () =>
    [...cache.keys.values()]
      .filter((k) => k.row.alg === alg && k.row.activatedAt && !k.row.retiredAt)
      .sort((a, b) => (b.row.activatedAt?.getTime() ?? 0) - (a.row.activatedAt?.getTime() ?? 0))[0];
  let entry = pick();
  if (!entry) {
    await ensureSigningKey(deps, alg);
    entry = pick();
  }
  if (!entry) throw new Error(`no active ${alg} signing key`);
  const row = entry.row;
  entry.privateKey ??= importJWK(
    JSON.parse(decrypt(deps.config.masterKey, row.privateKeyEncrypted, sealAad(row.kid))) as JWK,
    row.alg,
  ) as Promise<CryptoKey>;
  return { kid: row.kid, key: await entry.privateKey };
}

export interface SignOptions {
  /** JWT `typ` header; `JWT` when absent (ID tokens), e.g. `at+jwt`, `logout+jwt` for other kinds. */
  typ?: string;
  alg?: SigningAlg;
  expiresInSeconds: number;
}

/**
 * Signs claims with Tessera's active key. Sets `iss` (the configured issuer), `iat`, `exp` and the `kid` and `typ`
 * headers; the caller sets `sub`, `aud` and the rest.
 */
export async function signJwt(deps: CoreContext, claims: JWTPayload, options: SignOptions): Promise<string> {
  const max = maxTokenLifetimeSeconds(deps.config);
  if (!Number.isInteger(options.expiresInSeconds) || options.expiresInSeconds <= 0 || options.expiresInSeconds > max) {
    // A programming error: a longer lifetime would outlive the key's publication window.
    throw new TypeError(`expiresInSeconds must be a whole number between 1 and ${max}`);
  }
  const alg = options.alg ?? deps.config.tokens.signingAlg;
  if (!SIGNING_ALGS.includes(alg)) throw new TypeError(`unsupported signing algorithm ${alg}`);
  const { kid, key } = await signingKeyFor(deps, alg);
  const now = Math.floor(deps.clock.now().getTime() / 1000);
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg, kid, typ: options.typ ?? "JWT" })
    .setIssuer(deps.config.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + options.expiresInSeconds)
    .sign(key);
}

export interface VerifyOptions {
  /** Expected `typ` header; `JWT` when absent, so a logout or access token is never taken for an ID token. */
  typ?: string;
  /** Expected `aud` (one of the token's audiences). */
  audience?: string;
  /** Accept an expired token (e.g. an `id_token_hint`); every other check still applies. */
  allowExpired?: boolean;
}

function invalid(reason: string): AppError {
  return new AppError("TOKEN_INVALID", `The token is invalid: ${reason}.`);
}

async function verificationKey(deps: CoreContext, kid: string, alg: string): Promise<CryptoKey | null> {
  let cache = await loadedKeys(deps);
  let entry = cache.keys.get(kid);
  if (!entry && performance.now() - cache.loadedAtMs > MISS_REFRESH_MIN_MS) {
    // Possibly a key created by another instance since the last load.
    cache = await loadedKeys(deps, true);
    entry = cache.keys.get(kid);
  }
  if (!entry || entry.row.alg !== alg || !isPublished(entry.row, deps.clock.now(), deps.config)) return null;
  entry.publicKey ??= importJWK(entry.row.publicJwk as JWK, entry.row.alg) as Promise<CryptoKey>;
  return entry.publicKey;
}

/**
 * Verifies a JWT signed by Tessera: only Tessera's own published keys, algorithm pinned to the key's own (never
 * `none`, never HS*, no RS/ES/EdDSA confusion), then `iss`, `aud`, `typ`, `nbf` and `exp`. Throws TOKEN_INVALID or
 * TOKEN_EXPIRED.
 */
export async function verifyJwt(deps: CoreContext, token: string, options: VerifyOptions = {}): Promise<JWTPayload> {
  if (typeof token !== "string" || token.length === 0 || token.length > MAX_JWT_LENGTH) throw invalid("malformed");
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw invalid("malformed");
  }
  if (token.split(".").length !== 3) throw invalid("malformed");
  if (typeof header.alg !== "string" || !(SIGNING_ALGS as readonly string[]).includes(header.alg)) {
    throw invalid("unsupported algorithm");
  }
  if (typeof header.kid !== "string" || header.kid.length > 200) throw invalid("unknown key");
  const key = await verificationKey(deps, header.kid, header.alg);
  if (!key) throw invalid("unknown key");
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [header.alg],
      issuer: deps.config.issuer,
      ...(options.audience !== undefined ? { audience: options.audience } : {}),
      typ: options.typ ?? "JWT",
      currentDate: deps.clock.now(),
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ["iat", "exp"],
    });
    return payload;
  } catch (error) {
    // jose checks exp last, so a JWTExpired means every other check passed.
    if (error instanceof joseErrors.JWTExpired) {
      if (options.allowExpired) return error.payload;
      throw new AppError("TOKEN_EXPIRED");
    }
    if (error instanceof joseErrors.JWTClaimValidationFailed) throw invalid(`${error.claim} check failed`);
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) throw invalid("signature check failed");
    throw invalid("malformed");
  }
}

/** The public keys to publish: every active key and every retired one still inside its publication window. */
export async function publicJwks(deps: CoreContext): Promise<{ keys: JWK[] }> {
  let cache = await loadedKeys(deps);
  const now = deps.clock.now();
  const defaultAlg = deps.config.tokens.signingAlg;
  if (![...cache.keys.values()].some((k) => k.row.alg === defaultAlg && !k.row.retiredAt)) {
    await ensureSigningKey(deps, defaultAlg);
    cache = await loadedKeys(deps);
  }
  const rows = [...cache.keys.values()]
    .map((k) => k.row)
    .filter((row) => isPublished(row, now, deps.config))
    .sort(
      (a, b) =>
        Number(Boolean(a.retiredAt)) - Number(Boolean(b.retiredAt)) || b.createdAt.getTime() - a.createdAt.getTime(),
    );
  return {
    keys: rows.map((row) => {
      const { kty, crv, n, e, x, y } = row.publicJwk as JWK;
      // Only public members, whatever the stored object holds.
      return Object.fromEntries(
        Object.entries({ kty, crv, n, e, x, y, kid: row.kid, alg: row.alg, use: "sig" }).filter(
          ([, v]) => v !== undefined,
        ),
      ) as JWK;
    }),
  };
}
