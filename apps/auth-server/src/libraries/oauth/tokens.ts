import { randomBytes, randomUUID } from "node:crypto";
import type { Executor } from "@tessera/db";
import type { AppContext } from "../../context.ts";
import { insertRefreshTokenRow } from "../../queries/refresh-tokens.ts";
import { authorizationClaimsFor } from "../authorization/scope.ts";
import type { ClientRow } from "../clients/index.ts";
import { sha256 } from "../crypto.ts";
import { maxTokenLifetimeSeconds, signJwt } from "../keys/index.ts";
import type { SessionRow, UserRow } from "../sessions.ts";
import { acrFor } from "./acr.ts";

/**
 * Refresh tokens are opaque to clients: `tsr_` (so secret scanners can spot one) + 32 bytes, base64url. The first 16
 * bytes are the chain's id (16 CSPRNG bytes drawn when the chain starts, stored in a uuid column), the last 16 fresh
 * CSPRNG bytes: 256 unguessable bits for an outsider, and 128 fresh ones per rotation for whoever holds an earlier
 * token of the chain.
 * Only SHA-256 is stored. The chain id lets Tessera recognize any retired token of a chain after its row is gone
 * (reuse detection), so a chain keeps two rows, not one per refresh.
 */
export const REFRESH_TOKEN_PREFIX = "tsr_";
const REFRESH_TOKEN_LENGTH = REFRESH_TOKEN_PREFIX.length + 43;

/** A new refresh token value: in the given chain, or in a new one. Only its SHA-256 may be stored. */
export function newRefreshTokenValue(chainId: string | null): { token: string; chainId: string } {
  const chain = chainId ?? uuidText(randomBytes(16));
  return { token: newRefreshToken(chain), chainId: chain };
}

function newRefreshToken(chainId: string): string {
  const chain = Buffer.from(chainId.replaceAll("-", ""), "hex");
  return REFRESH_TOKEN_PREFIX + Buffer.concat([chain, randomBytes(16)]).toString("base64url");
}

/** 16 bytes in the uuid text form (any 16 bytes are a valid PostgreSQL uuid). */
function uuidText(bytes: Buffer): string {
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The chain id a refresh token names, or null for anything not shaped like one (older tokens name a random one). */
export function chainIdOf(token: string): string | null {
  if (token.length !== REFRESH_TOKEN_LENGTH || !token.startsWith(REFRESH_TOKEN_PREFIX)) return null;
  const bytes = Buffer.from(token.slice(REFRESH_TOKEN_PREFIX.length), "base64url");
  if (bytes.length !== 32) return null;
  return uuidText(bytes.subarray(0, 16));
}

/** The /token response (RFC 6749 5.1 + OIDC 3.1.3.3), plus the session's absolute expiry. */
export interface TokenResponse {
  access_token: string;
  /** DPoP when the access token is bound to the client's DPoP key (RFC 9449 5). */
  token_type: "Bearer" | "DPoP";
  expires_in: number;
  id_token: string;
  refresh_token: string;
  scope: string;
  /** Epoch seconds: every refresh token of the session stops working then, whatever the client does. */
  session_expires_at: number;
  /** Present (true) only for guest accounts (libraries/accounts/guests.ts). */
  is_anonymous?: true;
}

export interface Grant {
  client: ClientRow;
  user: UserRow;
  session: SessionRow;
  scopes: string[];
  /** Only on the authorization-code grant (OIDC 3.1.3.6): echoed from the authorization request. */
  nonce?: string | null | undefined;
  /** The DPoP key thumbprint the tokens are bound to (RFC 9449), when the request carried a proof. */
  dpopJkt?: string | null | undefined;
}

const epoch = (date: Date) => Math.floor(date.getTime() / 1000);

/**
 * Inserts a refresh token (call inside the transaction that redeems the code or retires the parent). Its scope is the
 * grant's, or `scope` when given: a successor keeps its parent's scope even when this refresh narrowed the access
 * token's (RFC 6749 6: "the refresh token scope MUST be identical to that of the refresh token included"). A successor
 * stays in its parent's chain (`chainId`) and keeps the authorization code the chain started from.
 */
export async function createRefreshToken(
  db: Executor,
  values: {
    grant: Grant;
    scope?: string;
    parentId?: string | null;
    chainId?: string | null;
    authorizationCodeId?: string | null;
    now: Date;
  },
): Promise<{ id: string; token: string }> {
  const chainId = values.chainId ?? uuidText(randomBytes(16));
  const token = newRefreshToken(chainId);
  const id = await insertRefreshTokenRow(db, {
    tokenHash: sha256(token),
    sessionId: values.grant.session.id,
    clientId: values.grant.client.id,
    userId: values.grant.user.id,
    parentId: values.parentId ?? null,
    chainId,
    authorizationCodeId: values.authorizationCodeId ?? null,
    scope: values.scope ?? values.grant.scopes.join(" "),
    createdAt: values.now,
  });
  return { id, token };
}

/** Identity claims released for the granted scopes (OIDC 5.4). */
export function userClaims(user: UserRow, scopes: string[]): Record<string, unknown> {
  // A guest has no address of its own yet (only a placeholder): no email claims, and `is_anonymous` instead.
  if (user.isAnonymous) return { is_anonymous: true };
  return {
    ...(scopes.includes("email") ? { email: user.email, email_verified: user.emailVerifiedAt !== null } : {}),
    ...(scopes.includes("profile") ? { name: user.displayName ?? undefined } : {}),
  };
}

/** The client's override when it has one, never longer than any Tessera JWT may live (keys outlive their tokens). */
export function accessTokenTtl(ctx: AppContext, client: ClientRow): number {
  const ttl = client.accessTokenTtlSeconds ?? ctx.config.tokens.accessTokenTtlSeconds;
  return Math.max(1, Math.min(ttl, maxTokenLifetimeSeconds(ctx.config)));
}

/**
 * Signs the ID token and the access token for a grant whose refresh token is already stored. Signing happens after
 * the transaction commits: keys may be read from the database, and nothing here needs to roll back.
 */
export async function tokenResponse(ctx: AppContext, grant: Grant, refreshToken: string): Promise<TokenResponse> {
  const { client, user, session, scopes } = grant;
  const scope = scopes.join(" ");
  const ttl = accessTokenTtl(ctx, client);
  const common = { iss: ctx.config.issuer, sub: user.id, aud: client.clientId, sid: session.id };
  // Started first: its one query runs while the access token is signed.
  const authorization = authorizationClaimsFor(ctx, user.id, client.id, scopes);
  authorization.catch(() => {}); // handled at the await below; not an unhandled rejection if signing fails first
  const accessToken = await signJwt(
    ctx,
    {
      ...common,
      client_id: client.clientId,
      scope,
      jti: randomUUID(),
      auth_time: epoch(session.authenticatedAt),
      ...(grant.dpopJkt ? { cnf: { jkt: grant.dpopJkt } } : {}),
    },
    { typ: "at+jwt", alg: ctx.config.tokens.accessTokenSigningAlg, expiresInSeconds: ttl },
  );
  const idToken = await signJwt(
    ctx,
    {
      ...common,
      azp: client.clientId,
      auth_time: epoch(session.authenticatedAt),
      amr: session.amr,
      acr: acrFor(session.amr),
      ...(grant.nonce ? { nonce: grant.nonce } : {}),
      ...userClaims(user, scopes),
      ...(await authorization),
    },
    { alg: client.idTokenSignedResponseAlg, expiresInSeconds: ctx.config.tokens.idTokenTtlSeconds },
  );
  return {
    access_token: accessToken,
    token_type: grant.dpopJkt ? "DPoP" : "Bearer",
    expires_in: ttl,
    id_token: idToken,
    refresh_token: refreshToken,
    scope,
    session_expires_at: epoch(session.expiresAt),
    ...(user.isAnonymous ? { is_anonymous: true as const } : {}),
  };
}
