import csrfProtection from "@fastify/csrf-protection";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config/index.ts";
import { AppError } from "../errors/index.ts";

/**
 * CSRF protection for Tessera's forms: @fastify/csrf-protection's double-submit cookie (a secret in an HttpOnly cookie,
 * an HMAC-free token derived from it in a hidden `_csrf` field). It works without JavaScript and needs no server
 * state. The cookie is host-only (`__Host-` when Secure) and SameSite=Lax. A missing or wrong token answers
 * CSRF_INVALID (403), mapped in http/errors.ts.
 */
export function csrfCookieName(config: Config): string {
  return config.cookieSecure ? "__Host-tessera_csrf" : "tessera_csrf";
}

export const CSRF_FIELD = "_csrf";

export const csrfPlugin = fp(async (app: FastifyInstance) => {
  const { config } = app.ctx;
  await app.register(csrfProtection, {
    sessionPlugin: "@fastify/cookie",
    cookieKey: csrfCookieName(config),
    cookieOpts: { path: "/", sameSite: "lax", httpOnly: true, secure: config.cookieSecure },
    getToken: (request: FastifyRequest) => {
      const body = request.body as Record<string, unknown> | undefined;
      const value = body && typeof body === "object" ? body[CSRF_FIELD] : undefined;
      return typeof value === "string" ? value : undefined;
    },
  });
});

/** The token to put in a form's hidden `_csrf` field (sets the secret cookie when the browser has none). */
export function csrfToken(reply: FastifyReply): string {
  return reply.generateCsrf();
}

/**
 * CSRF rule of the JSON API (a `preHandler` hook): every state-changing request must be `application/json` (a
 * cross-site form cannot send that, and a cross-origin fetch of it needs a CORS preflight Tessera never grants), and a
 * browser's `Sec-Fetch-Site` must be same-origin or none (absent for non-browser clients). With SameSite=Lax cookies
 * this also stops sibling subdomains.
 */
export async function jsonSameOriginOnly(request: FastifyRequest): Promise<void> {
  if (request.method === "GET" || request.method === "HEAD") return;
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") throw new AppError("CSRF_INVALID");
  const type = request.headers["content-type"];
  if (typeof type !== "string" || !/^application\/json\s*(;|$)/i.test(type)) {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", "Send a JSON body with Content-Type: application/json.");
  }
}
