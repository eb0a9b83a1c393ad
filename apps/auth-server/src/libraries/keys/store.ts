import type { KeyObject } from "node:crypto";
import type { Database } from "@tessera/db";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import type { Config } from "../../config/index.ts";
import type { CoreContext } from "../../context.ts";
import {
  findActiveSigningKey,
  insertSigningKey,
  lockSigningKeys,
  retireActiveSigningKeys,
  type SigningAlg,
  type SigningKeyRow,
  selectAllSigningKeys,
  selectLiveSigningKeys,
} from "../../queries/keys.ts";
import { addSeconds } from "../clock.ts";
import { encrypt } from "../crypto.ts";

export type { SigningAlg } from "../../queries/keys.ts";

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
export const MISS_REFRESH_MIN_MS = 1_000;
/** Verifier clock skew allowance for exp/nbf on Tessera's own tokens. */
export const CLOCK_TOLERANCE_SECONDS = 5;
export const MAX_JWT_LENGTH = 16 * 1024;

interface LoadedKey {
  row: SigningKeyRow;
  publicKey?: KeyObject;
  privateKey?: KeyObject;
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

export async function loadedKeys(deps: CoreContext, force = false): Promise<KeyCache> {
  const cache = cacheOf(deps);
  if (force || performance.now() - cache.loadedAtMs > CACHE_TTL_MS) await reload(deps, cache);
  return cache;
}

export function isPublished(row: SigningKeyRow, now: Date, config: Config): boolean {
  if (!row.retiredAt) return true;
  return addSeconds(row.retiredAt, keyPublishWindowSeconds(config)).getTime() > now.getTime();
}

export function sealAad(kid: string): string {
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
