import type { AppContext, Logger } from "../../context.ts";
import { AppError, OAuthError } from "../../errors/index.ts";
import { cachedActiveClient } from "../../queries/clients.ts";
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
 * Why a client authentication failed, for the audit row and the log line (never for the response, which is the same
 * `invalid_client` for all of them, RFC 6749 5.2):
 * - `missing_credentials`: no client_id at all;
 * - `unknown_client`: no active client with that client_id (unknown or disabled);
 * - `wrong_secret`: a confidential client with a secret that is neither its current nor its previous one;
 * - `secret_required`: a confidential client that sent only its client_id (auth method none);
 * - `wrong_auth_method`: a public client that sent a secret;
 * - `public_client_not_allowed`: a public client at an endpoint that needs a secret (/introspect, direct sign-in).
 */
export type ClientAuthFailure =
  | "missing_credentials"
  | "unknown_client"
  | "wrong_secret"
  | "secret_required"
  | "wrong_auth_method"
  | "public_client_not_allowed";

async function failureReason(ctx: AppContext, credentials: ClientCredentials): Promise<ClientAuthFailure> {
  const { clientId } = credentials;
  // Only on the failure path, and through the same per-instance cache the check itself used.
  const client =
    typeof clientId === "string" && clientId.length > 0 && clientId.length <= 128
      ? await cachedActiveClient(ctx.db, clientId, ctx.clock.now().getTime())
      : null;
  if (!client) return "unknown_client";
  const isPublic = client.tokenEndpointAuthMethod === "none";
  if (credentials.method === "none") return isPublic ? "public_client_not_allowed" : "secret_required";
  return isPublic ? "wrong_auth_method" : "wrong_secret";
}

/**
 * Bounds the warn lines about failed client authentication: at most LOG_BURST lines per minute per app instance; the
 * next line after a quiet spell says how many were left out. The audit rows are not sampled (the endpoints' per-IP
 * rate limit bounds those writes). The window belongs to the app's context, not to the module, so two apps in one
 * process (tests, a CLI next to a server) do not spend each other's budget.
 */
const LOG_BURST = 20;
const logWindows = new WeakMap<object, { startedMs: number; lines: number; suppressed: number }>();
function logFailure(ctx: AppContext, log: Logger | undefined, nowMs: number, fields: Record<string, unknown>): void {
  if (!log) return;
  let logWindow = logWindows.get(ctx);
  if (!logWindow) {
    logWindow = { startedMs: 0, lines: 0, suppressed: 0 };
    logWindows.set(ctx, logWindow);
  }
  if (nowMs - logWindow.startedMs >= 60_000) {
    logWindow.startedMs = nowMs;
    logWindow.lines = 0;
  }
  if (logWindow.lines >= LOG_BURST) {
    logWindow.suppressed++;
    return;
  }
  logWindow.lines++;
  const suppressed = logWindow.suppressed;
  logWindow.suppressed = 0;
  log.warn(
    { event: "client.authentication_failed", ...fields, ...(suppressed ? { suppressed } : {}) },
    "client authentication failed",
  );
}

/**
 * RFC 6749 2.3.1 / 5.2: a failed client authentication is 401 invalid_client, with `WWW-Authenticate: Basic` when the
 * client used the Authorization header. Unknown, disabled and wrong-secret clients fail the same way on the wire; every
 * such failure is audited (`client.authentication_failed`, with the client_id as sent and the reason, never the
 * secret) and logged at warn (rate-bounded, see logFailure), so an integrator with a wrong secret can be told why.
 * The endpoints are rate-limited per IP, which bounds the audit writes.
 */
export async function authenticateOAuthClient(
  ctx: AppContext,
  credentials: ClientCredentials | null,
  meta: RequestMeta,
  /** /token and /revoke serve public clients; /introspect and direct sign-in need a real client secret. */
  options: { allowPublic?: boolean; log?: Logger; endpoint?: string } = {},
): Promise<ClientRow> {
  if (!credentials) {
    await audit(ctx.db, meta, {
      event: "client.authentication_failed",
      outcome: "failure",
      details: { reason: "missing_credentials", ...(options.endpoint ? { endpoint: options.endpoint } : {}) },
    });
    logFailure(ctx, options.log, ctx.clock.now().getTime(), {
      reason: "missing_credentials",
      endpoint: options.endpoint,
      ip: meta.ip,
    });
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
      const reason = await failureReason(ctx, credentials);
      const clientId = credentials.clientId.slice(0, 128);
      await audit(ctx.db, meta, {
        event: "client.authentication_failed",
        outcome: "failure",
        clientId,
        details: { method: credentials.method, reason, ...(options.endpoint ? { endpoint: options.endpoint } : {}) },
      });
      logFailure(ctx, options.log, ctx.clock.now().getTime(), {
        clientId,
        method: credentials.method,
        reason,
        endpoint: options.endpoint,
        ip: meta.ip,
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
