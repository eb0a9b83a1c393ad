import csrfProtection from "@fastify/csrf-protection";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config/index.ts";

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
