import type { RegistrationResponseJSON } from "@simplewebauthn/server";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config/index.ts";
import { AppError } from "../../errors/index.ts";
import { jsonSameOriginOnly } from "../../http/csrf.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { requireSession, setSessionCookie } from "../../http/session.ts";
import {
  beginPasskeySecondStep,
  beginPasskeySignIn,
  finishPasskeySecondStep,
  finishPasskeySignIn,
} from "../../libraries/passkeys/authentication.ts";
import { beginPasskeyRegistration, finishPasskeyRegistration } from "../../libraries/passkeys/registration.ts";
import { passkeySchemas } from "../../libraries/passkeys/schemas.ts";
import { parse } from "../../validation.ts";
import { clearMfaCookie, mfaCookie } from "../pages/mfa-cookie.ts";
import { continuationFrom, destination } from "../pages/render.ts";

/**
 * The cookie binding a WebAuthn ceremony to the browser that started it: a 256-bit random value (SHA-256 stored in
 * `passkey_challenges`), HttpOnly, SameSite=Lax, `__Host-` when Secure, living as long as the challenge (5 minutes).
 */
export const ceremonyCookieName = (config: Config) =>
  config.cookieSecure ? "__Host-tessera_webauthn" : "tessera_webauthn";
const cookieOptions = (config: Config) => ({
  path: "/",
  httpOnly: true,
  secure: config.cookieSecure,
  sameSite: "lax" as const,
});

function setCeremonyCookie(reply: FastifyReply, config: Config, ceremony: { token: string; expiresAt: Date }) {
  reply.setCookie(ceremonyCookieName(config), ceremony.token, {
    ...cookieOptions(config),
    expires: ceremony.expiresAt,
  });
}
const ceremonyCookie = (request: FastifyRequest, config: Config) => request.cookies[ceremonyCookieName(config)];

/**
 * The WebAuthn ceremonies as JSON, for public/passkeys.js on the hosted pages. Every POST is CSRF-protected twice:
 * the JSON API's rule (`application/json`, same-origin `Sec-Fetch-Site`) and the pages' `_csrf` token in the body.
 *
 * - POST /api/v1/passkeys/registration/options `{ password | code }` (signed in) — creation options
 * - POST /api/v1/passkeys/registration `{ credential, name? }` (signed in) — 201 `{ passkey: { id, name } }`
 * - POST /api/v1/passkeys/sign-in/options — request options for a discoverable credential (also the autofill)
 * - POST /api/v1/passkeys/sign-in `{ credential, return_to?, client_id? }` — sets the session; `{ redirect }`
 * - POST /api/v1/passkeys/second-step/options — after a right password (the MFA challenge cookie)
 * - POST /api/v1/passkeys/second-step `{ credential, return_to?, client_id? }` — sets the session; `{ redirect }`
 */
export async function passkeyApiRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;
  const json = { errorFormat: "json" as const };
  const limited = (name: "login" | "otp" | "mfa") => ({
    config: { ...json, rateLimit: routeRateLimit(config, name) },
    preHandler: [jsonSameOriginOnly, app.csrfProtection],
  });

  app.post("/api/v1/passkeys/registration/options", limited("mfa"), async (request, reply) => {
    const current = await requireSession(request);
    const proof = parse(passkeySchemas.registrationOptions, request.body);
    const begun = await beginPasskeyRegistration(app.ctx, request.meta, {
      user: current.user,
      sessionId: current.session.id,
      ...proof,
    });
    setCeremonyCookie(reply, config, begun);
    return begun.options;
  });

  app.post("/api/v1/passkeys/registration", limited("mfa"), async (request, reply) => {
    const current = await requireSession(request);
    const input = parse(passkeySchemas.registrationVerify, request.body);
    reply.clearCookie(ceremonyCookieName(config), cookieOptions(config));
    const passkey = await finishPasskeyRegistration(app.ctx, request.meta, {
      user: current.user,
      sessionId: current.session.id,
      token: ceremonyCookie(request, config),
      credential: input.credential as RegistrationResponseJSON,
      name: input.name,
    });
    return reply.code(201).send({ passkey: { id: passkey.id, name: passkey.name } });
  });

  app.post("/api/v1/passkeys/sign-in/options", limited("login"), async (_request, reply) => {
    const begun = await beginPasskeySignIn(app.ctx);
    setCeremonyCookie(reply, config, begun);
    return begun.options;
  });

  app.post("/api/v1/passkeys/sign-in", limited("login"), async (request, reply) => {
    const input = parse(passkeySchemas.authenticationVerify, request.body);
    const continuation = continuationFrom(request.body);
    const current = await request.currentSession();
    reply.clearCookie(ceremonyCookieName(config), cookieOptions(config));
    const { session, token } = await finishPasskeySignIn(app.ctx, {
      token: ceremonyCookie(request, config),
      credential: input.credential,
      meta: request.meta,
      existing: current?.session ?? null,
      clientId: continuation.clientId,
    });
    setSessionCookie(reply, config, token, session.expiresAt);
    return { redirect: destination(continuation) };
  });

  app.post("/api/v1/passkeys/second-step/options", limited("otp"), async (request, reply) => {
    const begun = await beginPasskeySecondStep(app.ctx, mfaCookie(request, config));
    setCeremonyCookie(reply, config, begun);
    return begun.options;
  });

  app.post("/api/v1/passkeys/second-step", limited("otp"), async (request, reply) => {
    const input = parse(passkeySchemas.authenticationVerify, request.body);
    const continuation = continuationFrom(request.body);
    const current = await request.currentSession();
    reply.clearCookie(ceremonyCookieName(config), cookieOptions(config));
    try {
      const { session, token } = await finishPasskeySecondStep(app.ctx, {
        token: ceremonyCookie(request, config),
        mfaToken: mfaCookie(request, config),
        credential: input.credential,
        meta: request.meta,
        existing: current?.session ?? null,
        clientId: continuation.clientId,
      });
      clearMfaCookie(reply, config);
      setSessionCookie(reply, config, token, session.expiresAt);
      return { redirect: destination(continuation) };
    } catch (error) {
      if (error instanceof AppError && error.code === "MFA_CHALLENGE_EXPIRED") clearMfaCookie(reply, config);
      throw error;
    }
  });
}
