import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isRegisteredWebOrigin, originOf } from "../libraries/clients/index.ts";

/** Preflight answers may be cached by the browser this long (Chromium caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_SECONDS = 600;
const ALLOWED_HEADERS = "authorization, content-type, dpop";
/** Headers a browser client must read: the bearer/DPoP challenge and a DPoP server nonce. */
const EXPOSED_HEADERS = "www-authenticate, dpop-nonce";

/**
 * CORS for single-page apps on endpoints that take credentials (/token, /userinfo, /revoke). Only an origin
 * registered as a web origin of an active client is echoed in Access-Control-Allow-Origin — never `*`, and never
 * Access-Control-Allow-Credentials (these endpoints use no cookies: the credentials are in the request). A preflight
 * (OPTIONS) is answered 204; for an unregistered origin it carries no CORS headers, so the browser refuses the call.
 * Each URL must leave OPTIONS to this function (routes/oauth/http.ts methodNotAllowed).
 */
export function credentialedCors(app: FastifyInstance, urls: Record<string, string[]>): void {
  const allowed = async (request: FastifyRequest): Promise<string | null> => {
    const origin = originOf(request.headers.origin);
    return origin && (await isRegisteredWebOrigin(app.ctx, origin)) ? origin : null;
  };
  // Synchronous unless the request names an origin (a server-to-server call, the common case, makes no promise).
  app.addHook("onSend", (request, reply, payload, done) => {
    const url = request.routeOptions.url;
    if (request.method === "OPTIONS" || !url || !Object.hasOwn(urls, url)) return done(null, payload);
    reply.header("vary", "Origin");
    if (request.headers.origin === undefined) return done(null, payload);
    allowed(request).then(
      (origin) => {
        if (origin) {
          reply.header("access-control-allow-origin", origin);
          reply.header("access-control-expose-headers", EXPOSED_HEADERS);
        }
        done(null, payload);
      },
      (error: Error) => done(error),
    );
  });
  for (const [url, methods] of Object.entries(urls)) {
    app.options(url, { config: { errorFormat: "oauth" } }, async (request, reply) => {
      reply.header("vary", "Origin");
      const origin = await allowed(request);
      const method = request.headers["access-control-request-method"];
      if (origin && typeof method === "string" && methods.includes(method.toUpperCase())) {
        reply.header("access-control-allow-origin", origin);
        reply.header("access-control-allow-methods", methods.join(", "));
        reply.header("access-control-allow-headers", ALLOWED_HEADERS);
        reply.header("access-control-max-age", String(PREFLIGHT_MAX_AGE_SECONDS));
      }
      return reply.code(204).send();
    });
  }
}

/** CORS for public documents (discovery, JWKS): any origin, no credentials; preflight answered too. */
export function publicCors(app: FastifyInstance, urls: string[]): void {
  const preflight = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(204)
      .header("access-control-allow-origin", "*")
      .header("access-control-allow-methods", "GET")
      .header("access-control-max-age", String(PREFLIGHT_MAX_AGE_SECONDS))
      .send();
  for (const url of urls) app.options(url, preflight);
}
