import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config/index.ts";

/**
 * The cookie that carries a half-finished sign-in (password right, code still to come) to the code step. It holds a
 * 256-bit random value whose SHA-256 is in `mfa_challenges`; it lives only as long as the challenge (5 minutes by
 * default), is HttpOnly and SameSite=Lax, and `__Host-` when Secure. It is not a session: nothing but the code step
 * accepts it.
 */
export function mfaCookieName(config: Config): string {
  return config.cookieSecure ? "__Host-tessera_mfa" : "tessera_mfa";
}

const options = (config: Config) => ({
  path: "/",
  httpOnly: true,
  secure: config.cookieSecure,
  sameSite: "lax" as const,
});

export function setMfaCookie(reply: FastifyReply, config: Config, token: string, expiresAt: Date): void {
  reply.setCookie(mfaCookieName(config), token, { ...options(config), expires: expiresAt });
}

export function clearMfaCookie(reply: FastifyReply, config: Config): void {
  reply.clearCookie(mfaCookieName(config), options(config));
}

export function mfaCookie(request: FastifyRequest, config: Config): string | undefined {
  return request.cookies[mfaCookieName(config)];
}
