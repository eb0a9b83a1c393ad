import { randomUUID } from "node:crypto";
import type { AppContext } from "../../context.ts";
import { AppError, OAuthError } from "../../errors/index.ts";
import { findActiveClientByClientId } from "../../queries/clients.ts";
import type { ClientRow } from "../clients/index.ts";
import { signJwt, verifyJwt } from "../keys/index.ts";
import type { ClientAuthMethod } from "./client-auth.ts";
import { splitScope } from "./params.ts";
import { accessTokenTtl } from "./tokens.ts";

/**
 * RFC 6749 4.4, for game servers and services: an access token for the client itself. `sub` is the client_id (there
 * is no user and no session, so no `sid`), `aud` the client_id as on user tokens, the scope a subset of the client's
 * allowed scopes without the user-only `openid` and `offline_access`. No refresh token and no ID token (4.4.3): the
 * client asks again with its secret.
 */
export const CLIENT_CREDENTIALS_GRANT = "client_credentials";
const USER_ONLY_SCOPES = new Set(["openid", "offline_access"]);

/** The RFC 6749 5.1 response of this grant (no refresh_token, no id_token). */
export interface ClientTokenResponse {
  access_token: string;
  token_type: "Bearer" | "DPoP";
  expires_in: number;
  scope: string;
}

export async function clientCredentialsGrant(
  ctx: AppContext,
  client: ClientRow,
  authMethod: ClientAuthMethod,
  requested: string | undefined,
  /** The DPoP key thumbprint of the request's proof: the token is bound to it (`cnf.jkt`, RFC 9449 6). */
  dpopJkt: string | null = null,
): Promise<ClientTokenResponse> {
  // Confidential clients only (RFC 6749 4.4): a client that authenticated without a secret cannot act for itself.
  if (authMethod !== "client_secret_basic" && authMethod !== "client_secret_post") {
    throw new OAuthError("unauthorized_client", "Only confidential clients may use the client_credentials grant.");
  }
  const allowed = client.allowedScopes.filter((s) => !USER_ONLY_SCOPES.has(s));
  const scopes = requested === undefined ? allowed : splitScope(requested);
  const refused = scopes.filter((s) => !allowed.includes(s));
  if (refused.length) {
    throw new OAuthError(
      "invalid_scope",
      `Scope not available to client_credentials for this client: ${refused.join(" ").slice(0, 200)}`,
    );
  }
  const ttl = accessTokenTtl(ctx, client);
  const scope = scopes.join(" ");
  const accessToken = await signJwt(
    ctx,
    {
      iss: ctx.config.issuer,
      sub: client.clientId,
      aud: client.clientId,
      client_id: client.clientId,
      scope,
      jti: randomUUID(),
      ...(dpopJkt ? { cnf: { jkt: dpopJkt } } : {}),
    },
    { typ: "at+jwt", alg: ctx.config.tokens.accessTokenSigningAlg, expiresInSeconds: ttl },
  );
  return { access_token: accessToken, token_type: dpopJkt ? "DPoP" : "Bearer", expires_in: ttl, scope };
}

/**
 * RFC 7662 for a client_credentials token, or null when the token is not one (a user token has a `sid`). Active only
 * for the client it was issued to (and by), while that client is enabled; never names a user.
 */
export async function introspectClientToken(
  ctx: AppContext,
  client: ClientRow,
  token: string,
): Promise<Record<string, unknown> | null> {
  let payload: Awaited<ReturnType<typeof verifyJwt>>;
  try {
    payload = await verifyJwt(ctx, token, { typ: "at+jwt", audience: client.clientId });
  } catch (error) {
    if (error instanceof AppError) return null;
    throw error;
  }
  if (payload.sid !== undefined || payload.sub !== client.clientId || payload.client_id !== client.clientId)
    return null;
  // The caller authenticated moments ago; a disabled client could not have. Read again for a client disabled since.
  if (!(await findActiveClientByClientId(ctx.db, client.clientId))) return null;
  const jkt = boundKey(payload);
  return {
    active: true,
    token_type: jkt ? "DPoP" : "Bearer",
    scope: typeof payload.scope === "string" ? payload.scope : "",
    client_id: client.clientId,
    sub: client.clientId,
    aud: client.clientId,
    iss: payload.iss,
    iat: payload.iat,
    exp: payload.exp,
    jti: payload.jti,
    ...(jkt ? { cnf: { jkt } } : {}),
  };
}

/** The DPoP key thumbprint an access token is bound to (`cnf.jkt`), or null. */
export function boundKey(payload: Record<string, unknown>): string | null {
  const cnf = payload.cnf as { jkt?: unknown } | undefined;
  return typeof cnf?.jkt === "string" ? cnf.jkt : null;
}
