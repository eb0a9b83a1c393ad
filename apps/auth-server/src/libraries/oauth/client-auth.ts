import type { AppContext } from "../../context.ts";
import { AppError, OAuthError } from "../../errors/index.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { authenticateClient, type ClientRow, identifyPublicClient } from "../clients/index.ts";

/** `none`: a public client sending only its client_id (RFC 6749 2.3; PKCE and token binding protect it). */
export type ClientAuthMethod = "client_secret_basic" | "client_secret_post" | "none";

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
  method: ClientAuthMethod;
}

/**
 * RFC 6749 2.3.1 / 5.2: a failed client authentication is 401 invalid_client, with `WWW-Authenticate: Basic` when the
 * client used the Authorization header. Unknown, disabled and wrong-secret clients fail the same way, and every such
 * failure is audited (`client.authentication_failed`, with the client_id as sent, never the secret); the endpoints
 * are rate-limited per IP, which bounds these writes.
 */
export async function authenticateOAuthClient(
  ctx: AppContext,
  credentials: ClientCredentials | null,
  meta: RequestMeta,
  /** /token and /revoke serve public clients; /introspect and direct sign-in need a real client secret. */
  options: { allowPublic?: boolean } = {},
): Promise<ClientRow> {
  if (!credentials) {
    throw new OAuthError(
      "invalid_client",
      "Client authentication is required (client_secret_basic, client_secret_post, or client_id for public clients).",
    );
  }
  try {
    if (credentials.method === "none") {
      if (!options.allowPublic) throw new AppError("INVALID_CLIENT");
      return await identifyPublicClient(ctx, credentials.clientId);
    }
    return await authenticateClient(ctx, credentials);
  } catch (error) {
    if (error instanceof AppError && error.code === "INVALID_CLIENT") {
      await audit(ctx.db, meta, {
        event: "client.authentication_failed",
        outcome: "failure",
        clientId: credentials.clientId.slice(0, 128),
        details: { method: credentials.method },
      });
      const failure = new OAuthError("invalid_client", "Client authentication failed.");
      throw credentials.method === "client_secret_basic"
        ? failure.withHeaders({ "www-authenticate": 'Basic realm="tessera", charset="UTF-8"' })
        : failure;
    }
    throw error;
  }
}

/** RFC 6749 5.2: a client may only use the grant types it is registered for. */
export function checkGrantAllowed(client: ClientRow, grantType: string): void {
  if (!client.grantTypes.includes(grantType)) {
    throw new OAuthError("unauthorized_client", `This client may not use the ${grantType} grant.`);
  }
}
