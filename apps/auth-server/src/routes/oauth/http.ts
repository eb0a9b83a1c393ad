import type { FastifyInstance, FastifyRequest, HTTPMethods } from "fastify";
import { OAuthError } from "../../errors/index.ts";
import { sendOAuthError } from "../../http/errors.ts";
import type { ClientCredentials } from "../../libraries/oauth/client-auth.ts";
import { CLIENT_AUTH_PARAMS } from "../../libraries/oauth/form-params.ts";
import { readParams } from "../../libraries/oauth/params.ts";

/** RFC 6749 3.2 / 4.1.3: parameters in an application/x-www-form-urlencoded body; JSON is refused explicitly. */
export function requireForm(request: FastifyRequest): void {
  const type = request.headers["content-type"] ?? "";
  if (!/^application\/x-www-form-urlencoded\b/i.test(type)) {
    throw new OAuthError("invalid_request", "Send the parameters as application/x-www-form-urlencoded.");
  }
}

const ALL_METHODS: HTTPMethods[] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * Answers every other method on an OAuth URL with 405 and `Allow` (instead of the generic 404), in OAuth error JSON.
 * OPTIONS is among them unless the URL has a CORS preflight route (http/cors.ts: /token, /userinfo, /revoke).
 */
export function methodNotAllowed(app: FastifyInstance, url: string, allowed: HTTPMethods[]): void {
  const methods = ALL_METHODS.filter((m) => !allowed.includes(m) && !(m === "GET" && allowed.includes("HEAD")));
  // OPTIONS in `allowed` means a CORS preflight route exists (http/cors.ts); it is listed in Allow, not suggested.
  const usable = allowed.filter((m) => m !== "OPTIONS");
  app.route({
    method: methods,
    url,
    config: { errorFormat: "oauth" },
    handler: async (request, reply) =>
      sendOAuthError(
        reply,
        new OAuthError("invalid_request", `${request.method} is not allowed here; use ${usable.join(" or ")}.`, 405, {
          allow: allowed.join(", "),
        }),
      ),
  });
}

/** Where authenticateOAuthClient logs a failed client authentication (the request's logger and the endpoint). */
export function failureLog(request: FastifyRequest): { log: FastifyRequest["log"]; endpoint: string | undefined } {
  return { log: request.log, endpoint: request.routeOptions.url };
}

/** Decodes one half of a client_secret_basic header (RFC 6749 2.3.1: form-urlencoded before base64). */
function formDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "));
  } catch {
    throw new OAuthError("invalid_request", "The Authorization header is malformed.");
  }
}

/**
 * The client's credentials, from `Authorization: Basic` (client_secret_basic) or the form body (client_secret_post).
 * Using both at once is invalid_request (RFC 6749 2.3: one method per request); a client_id in the body must agree
 * with the header's.
 */
export function clientCredentials(request: FastifyRequest, body: unknown): ClientCredentials | null {
  const p = readParams(body, CLIENT_AUTH_PARAMS);
  const header = request.headers.authorization;
  if (typeof header === "string" && /^basic /i.test(header)) {
    if (p.client_secret !== undefined) {
      throw new OAuthError("invalid_request", "Use one client authentication method, not Basic and client_secret.");
    }
    const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0 || header.length > 2048) {
      throw new OAuthError("invalid_request", "The Authorization header is malformed.");
    }
    const clientId = formDecode(decoded.slice(0, colon));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused.
    if (/[\x00-\x1f\x7f]/.test(clientId) || clientId.length > 128) {
      throw new OAuthError("invalid_request", "The Authorization header is malformed.");
    }
    if (p.client_id !== undefined && p.client_id !== clientId) {
      throw new OAuthError("invalid_request", "The client_id does not match the Authorization header.");
    }
    return { clientId, clientSecret: formDecode(decoded.slice(colon + 1)), method: "client_secret_basic" };
  }
  if (p.client_id !== undefined && p.client_secret !== undefined) {
    return { clientId: p.client_id, clientSecret: p.client_secret, method: "client_secret_post" };
  }
  // A client_id alone: a public client (token_endpoint_auth_method none); a confidential one fails as invalid_client.
  if (p.client_id !== undefined) return { clientId: p.client_id, clientSecret: "", method: "none" };
  return null;
}
