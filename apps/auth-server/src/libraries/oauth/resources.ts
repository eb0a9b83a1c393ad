import type { JWTPayload } from "jose";
import type { AppContext } from "../../context.ts";
import { AppError, OAuthError } from "../../errors/index.ts";
import { acceptedAccessTokenOwners } from "../../queries/owners-cache.ts";
import { findChainByChainId, findRefreshTokenByHash, revokeClientChain } from "../../queries/refresh-tokens.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { authorizationClaimsFor } from "../authorization/scope.ts";
import type { ClientRow } from "../clients/index.ts";
import { sha256 } from "../crypto.ts";
import { verifyJwt } from "../keys/index.ts";
import type { SessionRow, UserRow } from "../sessions.ts";
import { boundKey, introspectClientToken } from "./client-credentials.ts";
import { DPOP_ALGS, verifyDpopProof } from "./dpop.ts";
import { sessionProblem } from "./grants.ts";
import { splitScope } from "./params.ts";
import { chainIdOf, REFRESH_TOKEN_PREFIX, userClaims } from "./tokens.ts";

const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * RFC 6750 3.1: errors of a protected resource carry a WWW-Authenticate challenge naming the error. For a request
 * under the DPoP scheme or with a DPoP-bound token, the challenge is DPoP's (RFC 9449 7.1), with the algorithms.
 */
function invalidToken(description: string, scheme: "Bearer" | "DPoP" = "Bearer"): OAuthError {
  return new OAuthError("invalid_token", description, 401, {
    "www-authenticate": challenge(scheme, "invalid_token", description),
  });
}

function challenge(scheme: "Bearer" | "DPoP", error: string, description: string): string {
  const text = description.replace(/["\\]/g, "'");
  const algs = scheme === "DPoP" ? `, algs="${DPOP_ALGS.join(" ")}"` : "";
  return `${scheme} realm="tessera", error="${error}", error_description="${text}"${algs}`;
}

export interface VerifiedAccessToken {
  payload: JWTPayload;
  session: SessionRow;
  user: UserRow;
  clientId: string;
  /** The client's internal id (`clients.id`). */
  clientRowId: string;
  scopes: string[];
}

/**
 * A Tessera access token (RFC 9068 `at+jwt`) that is still good: signature, iss, typ, exp, and — because logout must
 * take effect for every app at once — its session still live, its user and its client still enabled, and the client's
 * refresh-token chain in the session not revoked.
 * Returns null (never throws) for any token that is not. With `audience`, a token of any other client is null too
 * (introspection by a client, which has been looked up already).
 */
export async function checkAccessToken(
  ctx: AppContext,
  token: string,
  audience?: string,
): Promise<VerifiedAccessToken | null> {
  let payload: JWTPayload;
  try {
    payload = await verifyJwt(ctx, token, { typ: "at+jwt" });
  } catch (error) {
    if (error instanceof AppError) return null;
    throw error;
  }
  const aud = Array.isArray(payload.aud) ? payload.aud[0] : payload.aud;
  if (typeof payload.sub !== "string" || typeof payload.sid !== "string" || typeof aud !== "string") return null;
  if (!/^[0-9a-f-]{36}$/i.test(payload.sid)) return null;
  if (audience !== undefined && aud !== audience) return null;
  if (aud.length === 0 || aud.length > 128) return null;
  // Session, user, client and chain in one statement, or from the instance's cache (queries/owners-cache.ts: every
  // instance drops an entry when a write path ends the session, revokes a chain or changes the user or a client).
  const now = ctx.clock.now();
  const owners = await acceptedAccessTokenOwners(
    ctx.db,
    payload.sid,
    aud,
    (o) =>
      o.user.id === payload.sub &&
      !sessionProblem(o.session, o.user, now) &&
      !o.client.disabledAt &&
      // Issued with a refresh-token chain of this client in this session: when the chain is revoked (a replayed
      // code, RFC 7009 revocation), the access token stops too, instead of living on to its expiry.
      o.liveChain,
  );
  if (!owners) return null;
  return {
    payload,
    session: owners.session,
    user: owners.user,
    clientId: aud,
    clientRowId: owners.client.id,
    scopes: splitScope(typeof payload.scope === "string" ? payload.scope : ""),
  };
}

/** OIDC Core 5.3: the claims of the user the access token was issued for, per its scopes. */
export async function userinfo(
  ctx: AppContext,
  token: string | undefined,
  proof: { scheme: "Bearer" | "DPoP"; header: string | string[] | undefined; method: string } = {
    scheme: "Bearer",
    header: undefined,
    method: "GET",
  },
): Promise<Record<string, unknown>> {
  if (!token) {
    throw new OAuthError("invalid_token", "A bearer access token is required.", 401, {
      "www-authenticate": 'Bearer realm="tessera"',
    });
  }
  const verified = token.length <= MAX_TOKEN_LENGTH ? await checkAccessToken(ctx, token) : null;
  if (!verified) throw invalidToken("The access token is invalid, expired or revoked.", proof.scheme);
  await checkSenderConstraint(ctx, verified, token, proof);
  if (!verified.scopes.includes("openid")) {
    throw new OAuthError("insufficient_scope", "The access token lacks the openid scope.", 403, {
      "www-authenticate": 'Bearer realm="tessera", error="insufficient_scope", scope="openid"',
    });
  }
  return {
    sub: verified.user.id,
    ...userClaims(verified.user, verified.scopes),
    ...(await authorizationClaimsFor(ctx, verified.user.id, verified.clientRowId, verified.scopes)),
  };
}

/**
 * RFC 9449 7: an access token with `cnf.jkt` is usable only with the DPoP scheme and a proof (htm, htu, ath) signed
 * by that key; a token without one is refused under the DPoP scheme (no downgrade either way).
 */
async function checkSenderConstraint(
  ctx: AppContext,
  verified: VerifiedAccessToken,
  token: string,
  proof: { scheme: "Bearer" | "DPoP"; header: string | string[] | undefined; method: string },
): Promise<void> {
  const bound = boundKey(verified.payload);
  if (!bound) {
    if (proof.scheme === "DPoP") throw invalidToken("This access token is not DPoP-bound; use the Bearer scheme.");
    return;
  }
  if (proof.scheme !== "DPoP") {
    throw invalidToken("This access token is DPoP-bound; use the DPoP scheme and a proof.", "DPoP");
  }
  const method = proof.method === "HEAD" ? "GET" : proof.method;
  let jkt: string | null;
  try {
    jkt = await verifyDpopProof(ctx, proof.header, {
      method,
      url: `${ctx.config.issuer}/userinfo`,
      accessToken: token,
    });
  } catch (error) {
    if (error instanceof OAuthError) throw invalidProof(`The DPoP proof is invalid: ${error.description}`);
    throw error;
  }
  if (!jkt) throw invalidProof("A DPoP proof is required with this access token.");
  if (jkt !== bound) throw invalidToken("The DPoP proof is signed by another key than the token is bound to.", "DPoP");
}

/** RFC 9449 7.1: a missing or invalid proof at a resource is 401 invalid_dpop_proof with a DPoP challenge. */
function invalidProof(description: string): OAuthError {
  return new OAuthError("invalid_dpop_proof", description, 401, {
    "www-authenticate": challenge("DPoP", "invalid_dpop_proof", description),
  });
}

const isRefreshToken = (token: string) => token.startsWith(REFRESH_TOKEN_PREFIX);

/**
 * RFC 7662. Only the client a token was issued to learns anything about it; for any other caller, and for any token
 * that is not live, the answer is `{ "active": false }` and nothing else.
 */
export async function introspect(ctx: AppContext, client: ClientRow, token: string): Promise<Record<string, unknown>> {
  const inactive = { active: false };
  if (token.length > MAX_TOKEN_LENGTH) return inactive;
  const now = ctx.clock.now();
  if (isRefreshToken(token)) {
    const found = await findRefreshTokenByHash(ctx.db, sha256(token));
    if (!found || found.token.clientId !== client.id) return inactive;
    if (found.token.revokedAt || found.token.rotatedAt) return inactive;
    if (sessionProblem(found.session, found.user, now)) return inactive;
    return {
      active: true,
      token_type: "refresh_token",
      scope: found.token.scope,
      client_id: client.clientId,
      sub: found.user.id,
      iss: ctx.config.issuer,
      iat: Math.floor(found.token.createdAt.getTime() / 1000),
      exp: Math.floor(Math.min(found.session.expiresAt.getTime(), found.session.idleExpiresAt.getTime()) / 1000),
      sid: found.session.id,
      ...(await authorizationClaimsFor(ctx, found.user.id, client.id, splitScope(found.token.scope))),
    };
  }
  const verified = await checkAccessToken(ctx, token, client.clientId);
  if (!verified) return (await introspectClientToken(ctx, client, token)) ?? inactive;
  if (verified.clientId !== client.clientId) return inactive;
  const { payload } = verified;
  const jkt = boundKey(payload);
  return {
    active: true,
    // RFC 9449 6.2: a DPoP-bound token is introspected with its key's thumbprint, so a resource can check the proof.
    token_type: jkt ? "DPoP" : "Bearer",
    ...(jkt ? { cnf: { jkt } } : {}),
    scope: verified.scopes.join(" "),
    client_id: verified.clientId,
    sub: verified.user.id,
    aud: verified.clientId,
    iss: payload.iss,
    iat: payload.iat,
    exp: payload.exp,
    jti: payload.jti,
    sid: verified.session.id,
    ...(await authorizationClaimsFor(ctx, verified.user.id, verified.clientRowId, verified.scopes)),
  };
}

/**
 * RFC 7009. Revoking a refresh token revokes the client's whole chain in that session (the other apps of the session
 * keep theirs), and with it the access tokens issued from that chain (checkAccessToken requires a live chain).
 * Access tokens themselves are answered unsupported_token_type. A token of another client, or an unknown one, is also answered 200 (RFC 7009 2.2:
 * an invalid token is not an error), so the endpoint reveals nothing about tokens the caller does not own.
 */
export async function revoke(ctx: AppContext, client: ClientRow, token: string, meta: RequestMeta): Promise<void> {
  if (token.length > MAX_TOKEN_LENGTH) return;
  // RFC 7009 2.2.1: an access token (a JWT: three base64url parts) is not revocable one by one here; saying so beats
  // a 200 that leaves it working. Revoke the refresh token instead: the client's access tokens then stop too.
  if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
    throw new OAuthError(
      "unsupported_token_type",
      "Access tokens cannot be revoked one by one; revoke the refresh token, which also ends its access tokens.",
    );
  }
  if (!isRefreshToken(token)) return;
  // A retired token whose row is gone still names its chain (tokens.ts), and revokes it like its stored tokens do.
  const chainId = chainIdOf(token);
  const found =
    (await findRefreshTokenByHash(ctx.db, sha256(token))) ??
    (chainId ? await findChainByChainId(ctx.db, chainId) : null);
  if (!found || found.token.clientId !== client.id) return;
  await ctx.db.transaction(async (tx) => {
    const revoked = await revokeClientChain(tx, found.session.id, client.id, ctx.clock.now());
    if (revoked > 0) {
      await audit(tx, meta, {
        event: "token.revoked",
        outcome: "success",
        userId: found.user.id,
        clientId: client.clientId,
        sessionId: found.session.id,
        details: { refreshTokensRevoked: revoked },
      });
    }
  });
}
