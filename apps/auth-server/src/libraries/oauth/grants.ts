import type { AppContext } from "../../context.ts";
import { OAuthError } from "../../errors/index.ts";
import {
  consumeAuthorizationCode,
  findAuthorizationCodeByHash,
  lockSessionWithUser,
  revokeTokensIssuedFromCode,
} from "../../queries/codes.ts";
import { rotateInOneStatement } from "../../queries/refresh-rotation.ts";
import {
  deleteSupersededToken,
  findChildToken,
  lockChainByChainId,
  lockRefreshTokenByHash,
  type RefreshTokenForRotation,
  type RefreshTokenWithOwners,
  retireRefreshToken,
  revokeRefreshTokenById,
  slideSessionIdle,
} from "../../queries/refresh-tokens.ts";
import { audit, type RequestMeta } from "../audit.ts";
import type { ClientRow } from "../clients/index.ts";
import { sha256 } from "../crypto.ts";
import { countRefresh } from "../metrics.ts";
import {
  dueSlide,
  endSessions,
  idleSlideStepSeconds,
  type SessionRow,
  sessionValidity,
  type UserRow,
} from "../sessions.ts";
import { bindRefreshChain, checkRefreshBinding } from "./dpop.ts";
import { splitScope } from "./params.ts";
import { CODE_VERIFIER, verifyPkce } from "./pkce.ts";
import { narrowScope } from "./scopes.ts";
import {
  chainIdOf,
  createRefreshToken,
  type Grant,
  newRefreshTokenValue,
  type TokenResponse,
  tokenResponse,
} from "./tokens.ts";

/** Longest code or refresh token looked up; real ones are 43 (+4 prefix) characters. */
const MAX_TOKEN_LENGTH = 512;

/** Result of a transaction: either the grant and its new refresh token, or an error to answer after commit. */
type Outcome = { ok: true; grant: Grant; refreshToken: string } | { ok: false; error: OAuthError };
const fail = (description: string): Outcome => ({ ok: false, error: new OAuthError("invalid_grant", description) });

const SESSION_PROBLEM = { ended: "The session has ended.", expired: "The session has expired." } as const;

/** Why a session or its user can no longer get tokens, or null. Expiry is enforced here, on every use. */
export function sessionProblem(session: SessionRow, user: UserRow, now: Date): string | null {
  const validity = sessionValidity(session, now);
  if (validity !== "live") return SESSION_PROBLEM[validity];
  if (user.disabledAt || user.deletedAt) return "The user account is disabled.";
  return null;
}

/**
 * RFC 6749 4.1.3 + RFC 7636 4.6. The code is consumed first, by a conditional UPDATE inside the transaction that
 * issues the refresh token, so of N parallel redemptions exactly one wins. A code presented again answers
 * invalid_grant and revokes what the first redemption issued (RFC 6749 4.1.2). A code presented with the wrong
 * client, redirect URI or verifier stays consumed: it was exposed, and the legitimate client must start over.
 */
export async function authorizationCodeGrant(
  ctx: AppContext,
  client: ClientRow,
  params: {
    code: string | undefined;
    redirectUri: string | undefined;
    codeVerifier: string | undefined;
    /** Thumbprint of the request's DPoP key: the refresh token and access token are bound to it (dpop.ts). */
    dpopJkt?: string | null | undefined;
  },
  meta: RequestMeta,
): Promise<TokenResponse> {
  const { code, redirectUri, codeVerifier } = checkCodeParams(params);
  const now = ctx.clock.now();
  const codeHash = sha256(code);
  const outcome = await ctx.db.transaction(async (tx): Promise<Outcome> => {
    const redeemed = await consumeAuthorizationCode(tx, codeHash, now);
    if (!redeemed) {
      const existing = await findAuthorizationCodeByHash(tx, codeHash);
      if (existing?.consumedAt) {
        const revoked = await revokeTokensIssuedFromCode(tx, existing, now);
        await audit(tx, meta, {
          event: "token.code_replayed",
          outcome: "failure",
          userId: existing.userId,
          clientId: client.clientId,
          sessionId: existing.sessionId,
          details: { revokedRefreshTokens: revoked },
        });
        return fail("The authorization code has already been used.");
      }
      return fail("The authorization code is invalid or has expired.");
    }
    // checkCodeClient, checkRedirectUri, checkPkce: in this order, each on the consumed row.
    if (redeemed.clientId !== client.id) return fail("The authorization code was not issued to this client.");
    if (redeemed.redirectUri !== redirectUri) return fail("The redirect_uri does not match the authorization request.");
    if (!redeemed.codeChallenge) {
      // Cannot happen (a challenge is required at /authorize); a verifier for a code without one is still refused.
      return fail("The authorization code was issued without a code_challenge.");
    }
    if (redeemed.codeChallengeMethod !== "S256" || !verifyPkce(redeemed.codeChallenge, codeVerifier)) {
      return fail("The code_verifier does not match the code_challenge.");
    }
    // checkSession under the session lock: a logout either committed before (seen here) or waits for this
    // transaction and then revokes the token issued here too. Never a live token in an ended session.
    const owners = await lockSessionWithUser(tx, redeemed.sessionId);
    const problem = owners ? sessionProblem(owners.session, owners.user, now) : "The session has ended.";
    if (!owners || problem) return fail(problem ?? "The session has ended.");
    const grant: Grant = {
      client,
      user: owners.user,
      session: owners.session,
      scopes: splitScope(redeemed.scope),
      nonce: redeemed.nonce,
      dpopJkt: params.dpopJkt ?? null,
    };
    const { token } = await createRefreshToken(tx, { grant, authorizationCodeId: redeemed.id, now });
    if (params.dpopJkt) await bindRefreshChain(tx, token, params.dpopJkt, now);
    return { ok: true, grant, refreshToken: token };
  });
  if (!outcome.ok) throw outcome.error;
  return tokenResponse(ctx, outcome.grant, outcome.refreshToken);
}

function checkCodeParams(params: {
  code: string | undefined;
  redirectUri: string | undefined;
  codeVerifier: string | undefined;
}): { code: string; redirectUri: string; codeVerifier: string } {
  if (!params.code) throw new OAuthError("invalid_request", "The code parameter is required.");
  if (!params.redirectUri) throw new OAuthError("invalid_request", "The redirect_uri parameter is required.");
  if (!params.codeVerifier) throw new OAuthError("invalid_request", "The code_verifier parameter is required (PKCE).");
  if (!CODE_VERIFIER.test(params.codeVerifier)) {
    throw new OAuthError("invalid_request", "The code_verifier must be 43-128 characters of [A-Za-z0-9-._~].");
  }
  if (params.code.length > MAX_TOKEN_LENGTH) {
    throw new OAuthError("invalid_grant", "The authorization code is invalid or has expired.");
  }
  return { code: params.code, redirectUri: params.redirectUri, codeVerifier: params.codeVerifier };
}

/**
 * RFC 6749 6 with rotation and reuse detection (DESIGN.md "Sessions across apps"). Each use locks the token's session,
 * retires the token with a conditional UPDATE and issues its one successor in the same transaction, so N parallel
 * refreshes with one token produce exactly one successor (the others wait for the lock, then match nothing).
 *
 * A chain keeps only its live token and the one it replaced: the retired token before that is deleted at this
 * rotation. Any earlier token is still recognized, by the chain id it carries (tokens.ts), as a token of the chain.
 *
 * A retired token presented again:
 * - within `tokens.refreshGraceSeconds` of its rotation, by its own client, while its successor is still the live
 *   token of the chain (a concurrent refresh, e.g. two requests racing from one app): invalid_grant WITHOUT revoking
 *   anything. Only hashes are stored, so the successor cannot be handed out again, and issuing a second one would
 *   fork the chain; the app keeps the successor the winning request received. The window is judged by the time the
 *   request arrived (`receivedAt`), so a request held up on the way (a slow database, an outage) is not taken for
 *   reuse because it was processed late.
 * - otherwise (any older token of the chain too): reuse, i.e. a copy of the token is in someone else's hands. The
 *   whole session ends (every client), the event is audited as token.reuse_detected, and the answer is invalid_grant.
 */
export async function refreshTokenGrant(
  ctx: AppContext,
  client: ClientRow,
  params: {
    refreshToken: string | undefined;
    scope: string | undefined;
    receivedAt?: Date | undefined;
    dpopJkt?: string | null | undefined;
  },
  meta: RequestMeta,
): Promise<TokenResponse> {
  if (!params.refreshToken) throw new OAuthError("invalid_request", "The refresh_token parameter is required.");
  if (params.refreshToken.length > MAX_TOKEN_LENGTH)
    throw new OAuthError("invalid_grant", "The refresh token is invalid.");
  const tokenHash = sha256(params.refreshToken);
  const chainId = chainIdOf(params.refreshToken);
  const now = ctx.clock.now();
  const receivedAt = params.receivedAt ?? now;
  const dpopJkt = params.dpopJkt ?? null;

  /** The rules every presented token meets before rotation or reuse is considered, in order; null when it does. */
  function check(owned: RefreshTokenForRotation): Outcome | null {
    if (owned.token.clientId !== client.id) return fail("The refresh token was not issued to this client.");
    if (owned.token.revokedAt) return fail("The refresh token has been revoked.");
    const problem = owned.client.disabledAt
      ? "The client is disabled."
      : sessionProblem(owned.session, owned.user, now);
    if (problem) return fail(problem);
    // invalid_scope before anything else happens to the chain.
    narrowScope(splitScope(owned.token.scope), params.scope);
    return null;
  }

  // PostgreSQL: a plain rotation (a live token of a chain its text names, that passes every check, of a chain not bound
  // to another DPoP key than the proof's, with no scope narrowing asked) in one statement, no transaction and one round
  // trip (queries/refresh-rotation.ts): the statement reads the token and rotates it only if its rules (the same as
  // `check` and checkRefreshBinding) hold. Anything else, and a rotation that lost a race, takes the general path
  // below, which checks the binding first and reads everything again under the session's lock.
  if (chainId !== null && params.scope === undefined) {
    const successor = newRefreshTokenValue(chainId);
    const fast = await rotateInOneStatement(ctx.db, {
      tokenHash,
      chainId,
      clientId: client.id,
      dpopJkt,
      successorHash: sha256(successor.token),
      now,
      idleTtlSeconds: ctx.config.sessions.idleTtlSeconds,
      slideStepSeconds: idleSlideStepSeconds(ctx.config),
    });
    if (fast?.found && fast.successorId) {
      const found = fast.found;
      // The statement's rules and `check` are one list written twice (SQL and TypeScript); should they ever disagree,
      // the answer is check's, and the successor nobody received is revoked rather than left live.
      const refused = check(found);
      if (refused) {
        await revokeRefreshTokenById(ctx.db, fast.successorId, now);
        throw (refused as { ok: false; error: OAuthError }).error;
      }
      const slid = dueSlide(found.session, now, ctx.config);
      const session = slid ? { ...found.session, ...slid } : found.session;
      const scopes = narrowScope(splitScope(found.token.scope), undefined);
      countRefresh();
      return tokenResponse(ctx, { client, user: found.user, session, scopes, dpopJkt }, successor.token);
    }
  }

  // checkDpopBinding: a DPoP-bound chain needs a proof with its key before anything else happens to it.
  await checkRefreshBinding(ctx.db, params.refreshToken, dpopJkt);
  const attempt = () =>
    ctx.db.transaction(async (tx): Promise<Outcome> => {
      // checkToken, checkClientBinding, lockSession, checkRevoked, checkSession: in this order. The token is read and
      // its session locked by one statement; the session (and so a logout that committed meanwhile) is seen as it is
      // under the lock. Session first, then its tokens, like ending a session does.
      const found = await lockRefreshTokenByHash(tx, tokenHash);
      if (!found) {
        // Not stored: an older generation of a chain (reuse), or no token of Tessera's at all.
        const chain = chainId ? await lockChainByChainId(tx, chainId) : null;
        if (!chain) return fail("The refresh token is invalid.");
        const refused = check(chain);
        return refused ?? reuseDetected(chain);
      }
      const refused = check(found);
      if (refused) return refused;

      if (found.token.rotatedAt) return retiredTokenPresented(found);
      // checkSession passed: the refresh counts as activity and moves the idle deadline (never past the absolute one),
      // when that is due (sessions.ts dueSlide).
      const slid = dueSlide(found.session, now, ctx.config);
      const session = slid ? { ...found.session, ...slid } : found.session;
      const grant: Grant = {
        client,
        user: found.user,
        session,
        scopes: narrowScope(splitScope(found.token.scope), params.scope),
        dpopJkt,
      };
      // Retire, drop the superseded generation, slide the session and insert the successor: sent together (postgres.js
      // pipelines statements issued without waiting, so this is one round trip), executed in this order.
      const [retired, , , successor] = await Promise.all([
        retireRefreshToken(tx, found.token.id, now),
        found.token.parentId ? deleteSupersededToken(tx, found.token.parentId) : undefined,
        slid ? slideSessionIdle(tx, session.id, slid) : undefined,
        createRefreshToken(tx, {
          grant,
          scope: found.token.scope,
          parentId: found.token.id,
          chainId: found.token.chainId,
          authorizationCodeId: found.token.authorizationCodeId,
          now,
        }),
      ]);
      // The conditional UPDATE matched nothing: the token row read with the lock predates a rotation (or revocation)
      // that committed while this request waited for the session lock. Undo the writes above (the caller runs the
      // request again, which then reads the token as it is now).
      if (!retired) throw new LostRotationRace();
      return { ok: true, grant, refreshToken: successor.token };

      async function retiredTokenPresented(owned: RefreshTokenWithOwners): Promise<Outcome> {
        const rotatedAt = owned.token.rotatedAt as Date;
        const child = await findChildToken(tx, owned.token.sessionId, owned.token.id);
        const withinGrace = receivedAt.getTime() - rotatedAt.getTime() <= ctx.config.tokens.refreshGraceSeconds * 1000;
        if (withinGrace && child && !child.rotatedAt && !child.revokedAt) {
          const error = new OAuthError(
            "invalid_grant",
            "The refresh token was just rotated by a concurrent request; use the newest refresh token.",
          ).withCode("REFRESH_ROTATED_CONCURRENTLY");
          return { ok: false, error };
        }
        return reuseDetected(owned);
      }

      async function reuseDetected(owned: RefreshTokenWithOwners): Promise<Outcome> {
        const ended = await endSessions(ctx, tx, { ids: [owned.session.id] }, "refresh_token_reuse");
        await audit(tx, meta, {
          event: "token.reuse_detected",
          outcome: "failure",
          userId: owned.user.id,
          clientId: client.clientId,
          sessionId: owned.session.id,
          details: { tokenHashPrefix: tokenHash.slice(0, 12), sessionsEnded: ended.length },
        });
        return fail("The refresh token was already used; the session has been ended.");
      }
    });
  let outcome: Outcome;
  try {
    outcome = await attempt();
  } catch (error) {
    if (!(error instanceof LostRotationRace)) throw error;
    // Once more: the token is then read as it is now (rotated or revoked), so this cannot lose the same way twice
    // (a token is retired once); a second loss would be a bug, and answers 500 rather than loop.
    outcome = await attempt();
  }
  if (!outcome.ok) throw outcome.error;
  countRefresh();
  return tokenResponse(ctx, outcome.grant, outcome.refreshToken);
}

/** Thrown inside the refresh transaction to roll it back when its conditional UPDATE lost a race (see above). */
class LostRotationRace extends Error {}
