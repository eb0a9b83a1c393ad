import cookie from "@fastify/cookie";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config/index.ts";
import { AppError } from "../errors/index.ts";
import { resolveSession, type SessionRow } from "../libraries/sessions.ts";
import type { UserRow } from "../queries/users.ts";

/**
 * Tessera's session cookie. `__Host-` when Secure (host-only, path /, no Domain: a sibling subdomain cannot set or
 * overwrite it); HttpOnly; SameSite=Lax so top-level navigations from client apps to /authorize carry it while
 * cross-site subrequests and form posts do not.
 */
export function sessionCookieName(config: Config): string {
  return config.cookieSecure ? "__Host-tessera_session" : "tessera_session";
}

export function setSessionCookie(reply: FastifyReply, config: Config, token: string, expiresAt: Date): void {
  reply.setCookie(sessionCookieName(config), token, {
    path: "/",
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: "lax",
    expires: expiresAt,
  });
}

export function clearSessionCookie(reply: FastifyReply, config: Config): void {
  reply.clearCookie(sessionCookieName(config), {
    path: "/",
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: "lax",
  });
}

export interface CurrentSession {
  session: SessionRow;
  user: UserRow;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The browser's live Tessera session and user, or null. Resolved once per request, on first call. */
    currentSession(): Promise<CurrentSession | null>;
  }
}

const cache = new WeakMap<FastifyRequest, Promise<CurrentSession | null>>();

/** Registers @fastify/cookie and `request.currentSession()`. */
export const sessionPlugin = fp(async (app: FastifyInstance) => {
  await app.register(cookie);
  app.decorateRequest("currentSession", function (this: FastifyRequest) {
    let pending = cache.get(this);
    if (!pending) {
      pending = resolveSession(app.ctx, this.cookies[sessionCookieName(app.ctx.config)]);
      cache.set(this, pending);
    }
    return pending;
  });
});

/**
 * The signed-in browser's session and user, for routes that need one. Without a live session: the JSON API answers
 * UNAUTHENTICATED (401); a hosted page (with `reply` and the page's own path) sends a 303 to the sign-in page that
 * comes back to it, and gets null (return `reply` then).
 */
export async function requireSession(request: FastifyRequest): Promise<CurrentSession>;
export async function requireSession(
  request: FastifyRequest,
  reply: FastifyReply,
  returnTo: string,
): Promise<CurrentSession | null>;
export async function requireSession(
  request: FastifyRequest,
  reply?: FastifyReply,
  returnTo?: string,
): Promise<CurrentSession | null> {
  const current = await request.currentSession();
  if (current) return current;
  if (!reply || !returnTo) throw new AppError("UNAUTHENTICATED");
  reply
    .code(303)
    .header("location", `/login?return_to=${encodeURIComponent(returnTo)}`)
    .header("cache-control", "no-store")
    .send();
  return null;
}
