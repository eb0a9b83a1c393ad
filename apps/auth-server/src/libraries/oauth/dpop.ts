import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Executor } from "@tessera/db";
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, type JWK, jwtVerify } from "jose";
import type { AppContext } from "../../context.ts";
import { OAuthError } from "../../errors/index.ts";
import { deleteExpiredProofs, findDpopBinding, insertDpopBinding, recordProofJti } from "../../queries/dpop.ts";
import type { ClientRow } from "../clients/index.ts";
import { sha256 } from "../crypto.ts";
import { chainIdOf } from "./tokens.ts";

/**
 * DPoP (RFC 9449): a client proves possession of a private key with a short signed JWT per request, and Tessera
 * binds what it issues to that key — the refresh-token chain (dpop_bindings, by chain id) and the access token
 * (`cnf.jkt`). A stolen bound token is useless without the key.
 */

/** Asymmetric algorithms accepted for proofs (advertised as dpop_signing_alg_values_supported). Never `none` or HS*. */
export const DPOP_ALGS = ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"] as const;
/** A proof is accepted this long after its `iat` (and this far ahead, for clock skew); its jti is kept as long. */
const PROOF_WINDOW_SECONDS = 300;
const MAX_PROOF_LENGTH = 8 * 1024;
/** One insert in this many also deletes a batch of expired proof ids, so the table stays small without a job. */
const SWEEP_EVERY = 50;

const invalidProof = (description: string) => new OAuthError("invalid_dpop_proof", description);

/**
 * Server nonces (RFC 9449 8), stateless: `<window>.<HMAC(master key, window)>`, a new one every NONCE_WINDOW_SECONDS;
 * the current and the previous window's nonce are accepted, so a nonce lives 5 to 10 minutes and needs no storage
 * (the proof's jti, stored anyway, stops replays within that time).
 */
const NONCE_WINDOW_SECONDS = 300;

function nonceFor(ctx: AppContext, window: number): string {
  const key = createHmac("sha256", ctx.config.masterKey).update("tessera/dpop-nonce/v1").digest();
  const mac = createHmac("sha256", key).update(String(window)).digest("base64url").slice(0, 32);
  return `${window.toString(36)}.${mac}`;
}

/** The nonce to send in the DPoP-Nonce header now. */
export function dpopNonce(ctx: AppContext): string {
  return nonceFor(ctx, Math.floor(ctx.clock.now().getTime() / 1000 / NONCE_WINDOW_SECONDS));
}

function nonceIsCurrent(ctx: AppContext, nonce: string): boolean {
  const current = Math.floor(ctx.clock.now().getTime() / 1000 / NONCE_WINDOW_SECONDS);
  return [current, current - 1].some((window) => {
    const expected = Buffer.from(nonceFor(ctx, window));
    const given = Buffer.from(nonce);
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}

/** use_dpop_nonce with a fresh nonce in the DPoP-Nonce header (RFC 9449 8). */
function useNonce(ctx: AppContext, description: string): OAuthError {
  return new OAuthError("use_dpop_nonce", description, 400, { "dpop-nonce": dpopNonce(ctx) });
}

export interface DpopRequest {
  method: string;
  /** The endpoint's URL from the configured issuer (never from the Host header). */
  url: string;
  /** Present at a protected resource: the proof must carry `ath`, the hash of this access token. */
  accessToken?: string;
  /** The proof must carry a current server nonce (RFC 9449 8); a stale or forged nonce is refused either way. */
  requireNonce?: boolean;
}

/**
 * Verifies a DPoP header (RFC 9449 4.3) and returns the key's thumbprint, or null when no proof was sent. Checks, in
 * order: one header, `typ` dpop+jwt, an allowed asymmetric alg, a public `jwk` in the header, the signature with that
 * key, `htm` and `htu` of this request, `iat` within the window, `ath` at a resource, and `jti` never seen before.
 */
export async function verifyDpopProof(
  ctx: AppContext,
  header: string | string[] | undefined,
  request: DpopRequest,
): Promise<string | null> {
  if (header === undefined) return null;
  if (Array.isArray(header) || header.length === 0 || header.length > MAX_PROOF_LENGTH) {
    throw invalidProof("Send exactly one DPoP proof.");
  }
  let jwk: JWK;
  let payload: Record<string, unknown>;
  try {
    const protectedHeader = decodeProtectedHeader(header);
    jwk = protectedHeader.jwk as JWK;
    if (!jwk || typeof jwk !== "object" || "d" in jwk || "k" in jwk) throw new Error("no public jwk");
    const now = ctx.clock.now();
    const verified = await jwtVerify(header, EmbeddedJWK, {
      typ: "dpop+jwt",
      algorithms: [...DPOP_ALGS],
      currentDate: now,
      maxTokenAge: PROOF_WINDOW_SECONDS,
      clockTolerance: PROOF_WINDOW_SECONDS,
    });
    payload = verified.payload as Record<string, unknown>;
  } catch {
    throw invalidProof("The DPoP proof is malformed, not signed by its key, or too old.");
  }
  const { jti, htm, htu, iat, ath } = payload;
  if (typeof jti !== "string" || jti.length < 8 || jti.length > 256) throw invalidProof("The DPoP proof needs a jti.");
  if (htm !== request.method) throw invalidProof("The DPoP proof's htm does not match this request.");
  if (typeof htu !== "string" || stripQuery(htu) !== request.url) {
    throw invalidProof("The DPoP proof's htu does not match this endpoint.");
  }
  if (request.accessToken !== undefined) {
    const expected = createHash("sha256").update(request.accessToken).digest("base64url");
    if (ath !== expected) throw invalidProof("The DPoP proof's ath does not match the access token.");
  }
  const { nonce } = payload;
  if (nonce !== undefined && (typeof nonce !== "string" || nonce.length > 128 || !nonceIsCurrent(ctx, nonce))) {
    throw useNonce(ctx, "The DPoP proof's nonce is not current; use the one in the DPoP-Nonce header.");
  }
  if (nonce === undefined && request.requireNonce) {
    throw useNonce(ctx, "This client's DPoP proofs must carry the nonce sent in the DPoP-Nonce header.");
  }
  const jkt = await calculateJwkThumbprint(jwk, "sha256");
  // Replay: a proof id is accepted once per key while it could still verify (RFC 9449 11.1).
  const expiresAt = new Date(((iat as number) + 2 * PROOF_WINDOW_SECONDS) * 1000);
  if (!(await recordProofJti(ctx.db, sha256(`${jkt}.${jti}`), expiresAt))) {
    throw invalidProof("This DPoP proof was already used.");
  }
  if (Math.floor(Math.random() * SWEEP_EVERY) === 0) await deleteExpiredProofs(ctx.db, ctx.clock.now(), 500);
  return jkt;
}

function stripQuery(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "";
  }
}

/**
 * The proof of a /token request: its key thumbprint, or null without one. A client registered with `requireDpop`
 * must send a proof on every token request, carrying a server nonce (RFC 9449 8: the first request is answered
 * use_dpop_nonce with the nonce; the client's DPoP library retries with it). Other clients may include the nonce.
 */
export async function tokenRequestKey(
  ctx: AppContext,
  client: ClientRow,
  header: string | string[] | undefined,
): Promise<string | null> {
  const jkt = await verifyDpopProof(ctx, header, {
    method: "POST",
    url: `${ctx.config.issuer}/token`,
    requireNonce: client.requireDpop,
  });
  if (!jkt && client.requireDpop) throw invalidProof("This client must send a DPoP proof with every token request.");
  return jkt;
}

/** Binds a new refresh token's chain to the proof key (inside the transaction that stored the token). */
export async function bindRefreshChain(db: Executor, refreshToken: string, jkt: string, now: Date): Promise<void> {
  const chainId = chainIdOf(refreshToken);
  if (chainId) await insertDpopBinding(db, { chainId, jkt, createdAt: now });
}

/**
 * RFC 9449 5.0: a refresh token bound to a key is refused unless this request's proof is signed by that key — without
 * a proof `invalid_dpop_proof`, with another key `invalid_grant`. Checked before rotation, so a thief without the key
 * neither rotates the chain nor sets off reuse detection.
 */
export async function checkRefreshBinding(db: Executor, refreshToken: string, jkt: string | null): Promise<void> {
  const chainId = chainIdOf(refreshToken);
  const bound = chainId ? await findDpopBinding(db, chainId) : null;
  if (!bound) return;
  if (!jkt) throw invalidProof("This refresh token is bound to a DPoP key: send a DPoP proof signed with it.");
  if (bound !== jkt) throw new OAuthError("invalid_grant", "The refresh token is bound to another DPoP key.");
}
