import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * The claims of the app's own access JWT. `sub`, `sid`, `email`, `email_verified`, `name` come from Tessera's ID
 * token; `roles`, `permissions`, `entitlements` (or whatever `extraClaims` names) are copied as Tessera returned them.
 * `sxp` is the Tessera session's absolute expiry (epoch seconds), so cookies never outlive it.
 *
 * @example
 * ```ts
 * const claims: AccessClaims = request.user!.claims; // { sub, sid, aud, iat, exp, sxp, email, ... }
 * ```
 */
export type AccessClaims = ClaimsInput & { aud: string; iat: number; exp: number };

/**
 * The claims an access JWT is signed from; `aud`, `iat` and `exp` are added by {@link AccessTokenCodec.sign}.
 *
 * @example
 * ```ts
 * const input: ClaimsInput = { sub: "u1", sid: "s1", sxp: 1_900_000_000, email: "ada@example.com", roles: ["admin"] };
 * ```
 */
export interface ClaimsInput {
  sub: string;
  sid: string;
  sxp: number;
  email?: string;
  email_verified?: boolean;
  name?: string;
  roles?: string[];
  permissions?: string[];
  /** Binds the token to the refresh token issued with it (set by the SDK; see the README's "Refresh"). */
  rth?: string;
  [claim: string]: unknown;
}

/**
 * The signed-in user as the app sees it; built once per access JWT and frozen (it is shared by cached requests).
 *
 * @example
 * ```ts
 * app.get("/me", { onRequest: requireUser }, async (request) => {
 *   const user: TesseraUser = request.user!;
 *   return { id: user.id, email: user.email, admin: user.roles.includes("admin") };
 * });
 * ```
 */
export interface TesseraUser {
  /** Tessera's stable user id. */
  readonly id: string;
  /** Tessera's session id (`sid`): the same on every app the user signed into from this browser. */
  readonly sessionId: string;
  readonly email: string | undefined;
  readonly emailVerified: boolean;
  readonly name: string | undefined;
  readonly roles: readonly string[];
  readonly permissions: readonly string[];
  /** When the app's access JWT expires (epoch seconds). */
  readonly expiresAt: number;
  /** Every claim of the access JWT, including extra ones Tessera returned (e.g. `entitlements`). */
  readonly claims: Readonly<AccessClaims>;
}

/**
 * The outcome of a verification; `valid` results are cached and returned as the same object on every hit.
 *
 * @example
 * ```ts
 * const result: VerifyResult = codec.verify(jwt, Math.floor(Date.now() / 1000));
 * if (result.status === "expired") console.log("expired session", result.claims.sid);
 * ```
 */
export type VerifyResult =
  | { readonly status: "valid"; readonly claims: AccessClaims; readonly user: TesseraUser }
  | { readonly status: "expired"; readonly claims: AccessClaims }
  | { readonly status: "invalid" };

/**
 * The one header the SDK ever writes: compared as exact bytes, so `alg: none`, RS256/HS256 confusion, `crit`, `kid`
 * tricks or a re-ordered header are rejected before any crypto runs.
 */
const HEADER = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
const INVALID: VerifyResult = Object.freeze({ status: "invalid" });
/** A cookie can hold ~4 KB; anything longer is not ours, and bounding it bounds the HMAC work an attacker can ask. */
const MAX_TOKEN_LENGTH = 4096;
/** HMAC-SHA256 in base64url without padding: 32 bytes → 43 characters. */
const SIGNATURE_LENGTH = 43;
/** Our own clock issues `iat`; a small allowance absorbs clock steps between app instances. */
const IAT_SKEW_SECONDS = 60;

/**
 * Signs and verifies the app's own HS256 access JWTs.
 *
 * Verification is synchronous HMAC-SHA256 with `crypto.timingSafeEqual` (≈2 µs) instead of a per-request jose call,
 * and valid tokens are kept in a bounded cache, so a repeat request costs one Map lookup, one string comparison and
 * an `exp` comparison. A hit must equal the whole cached token, so a tampered token can never use it.
 *
 * @example
 * ```ts
 * const tokens = new AccessTokenCodec({ secret: Buffer.from(process.env.APP_SECRET!), audience: "my-app" });
 * const jwt = tokens.sign({ sub: "u1", sid: "s1", sxp: now + 86400, email: "a@example.com" }, now, 300);
 * const result = tokens.verify(jwt, now);
 * if (result.status === "valid") console.log(result.user.email);
 * ```
 */
export class AccessTokenCodec {
  readonly #key: Buffer;
  readonly #audience: string;
  readonly #cache = new Map<string, { token: string; result: VerifyResult & { status: "valid" } }>();
  readonly #cacheSize: number;

  constructor(options: { secret: Buffer; audience: string; cacheSize?: number }) {
    this.#key = options.secret;
    this.#audience = options.audience;
    this.#cacheSize = options.cacheSize ?? 10_000;
  }

  /** Signs claims into a JWT with the pinned header. `nowSeconds` and `ttlSeconds` set `iat`/`exp`. */
  sign(claims: ClaimsInput, nowSeconds: number, ttlSeconds: number): string {
    const full = {
      ...claims,
      aud: this.#audience,
      iat: nowSeconds,
      // Never beyond the Tessera session's own expiry.
      exp: Math.min(nowSeconds + ttlSeconds, claims.sxp),
    };
    const signingInput = `${HEADER}.${Buffer.from(JSON.stringify(full)).toString("base64url")}`;
    return `${signingInput}.${createHmac("sha256", this.#key).update(signingInput).digest("base64url")}`;
  }

  /** Verifies a token at `nowSeconds`. Never throws. */
  verify(token: string, nowSeconds: number): VerifyResult {
    // The cache is keyed by the signature segment (43 characters) and the hit must equal the whole token: hashing a
    // ~400-character key on every lookup cost more (~1 µs, measured) than all the rest of the check.
    const last = token.lastIndexOf(".");
    const signatureSegment = token.slice(last + 1);
    const cached = this.#cache.get(signatureSegment);
    if (cached && cached.token === token) {
      if (cached.result.claims.exp > nowSeconds) return cached.result;
      this.#cache.delete(signatureSegment);
      return { status: "expired", claims: cached.result.claims };
    }
    if (token.length > MAX_TOKEN_LENGTH) return INVALID;
    const first = token.indexOf(".");
    if (first !== HEADER.length || last === first || token.slice(0, first) !== HEADER) return INVALID;
    // The signature's exact characters are compared (43 of them), not its decoded bytes: a lenient base64 decoder
    // ignores the last character's two padding bits, which would give every token a second, equally valid spelling.
    if (signatureSegment.length !== SIGNATURE_LENGTH) return INVALID;
    const signature = Buffer.from(signatureSegment, "utf8");
    const expected = Buffer.from(createHmac("sha256", this.#key).update(token.slice(0, last)).digest("base64url"));
    if (signature.length !== SIGNATURE_LENGTH || !timingSafeEqual(expected, signature)) return INVALID;

    const claims = parseClaims(token.slice(first + 1, last));
    if (!claims || claims.aud !== this.#audience || claims.iat > nowSeconds + IAT_SKEW_SECONDS) return INVALID;
    // The SDK never writes `nbf`, but a token carrying one is not used before it (RFC 7519 4.1.5).
    if (
      claims.nbf !== undefined &&
      !(Number.isFinite(claims.nbf) && (claims.nbf as number) <= nowSeconds + IAT_SKEW_SECONDS)
    ) {
      return INVALID;
    }
    if (claims.exp <= nowSeconds) return { status: "expired", claims };

    const result = { status: "valid" as const, claims, user: toUser(claims) };
    if (this.#cache.size >= this.#cacheSize) {
      // Oldest insertion first (Map keeps insertion order): cheap and good enough for 5-minute tokens.
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(signatureSegment, { token, result });
    return result;
  }

  /** Number of cached verified tokens (for tests and metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }
}

function parseClaims(segment: string): AccessClaims | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return null;
  const c = value as Record<string, unknown>;
  if (typeof c.sub !== "string" || typeof c.sid !== "string" || typeof c.aud !== "string") return null;
  if (!Number.isFinite(c.iat) || !Number.isFinite(c.exp) || !Number.isFinite(c.sxp)) return null;
  return deepFreeze(c as AccessClaims);
}

function strings(value: unknown): readonly string[] {
  return Array.isArray(value) ? Object.freeze(value.filter((v): v is string => typeof v === "string")) : [];
}

/**
 * The user of verified claims (internal: also used for a refresh that lost a race inside Tessera's grace window).
 * @internal
 *
 * @example
 * ```ts
 * const user = toUser(verifiedClaims); // internal
 * ```
 */
export function toUser(claims: AccessClaims): TesseraUser {
  return Object.freeze({
    id: claims.sub,
    sessionId: claims.sid,
    email: typeof claims.email === "string" ? claims.email : undefined,
    emailVerified: claims.email_verified === true,
    name: typeof claims.name === "string" ? claims.name : undefined,
    roles: strings(claims.roles),
    permissions: strings(claims.permissions),
    expiresAt: claims.exp,
    claims,
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
