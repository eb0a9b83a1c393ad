import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors/index.ts";
import { jsonSameOriginOnly } from "../../http/csrf.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { requireSession, setSessionCookie } from "../../http/session.ts";
import { signInWithSecondFactor } from "../../libraries/accounts/sign-in.ts";
import { sendInBackground } from "../../libraries/mailer/index.ts";
import { accountEmail, recipient } from "../../libraries/mailer/messages.ts";
import {
  confirmTotpEnrolment,
  disableTotpWithPassword,
  regenerateRecoveryCodes,
} from "../../libraries/mfa/enrolment.ts";
import { totpStatus } from "../../libraries/mfa/factor.ts";
import { mfaSchemas } from "../../libraries/mfa/schemas.ts";
import { startTotpEnrolment } from "../../libraries/mfa/start-enrolment.ts";
import { parse } from "../../validation.ts";
import { clearMfaCookie, mfaCookie } from "../pages/mfa-cookie.ts";
import { sessionJson, userJson } from "./accounts.ts";

/**
 * The JSON equivalents of the second sign-in step and of two-step verification on the account page, under /api/v1.
 * Same CSRF rule as the account API: state changes must be `application/json` and, from a browser, same-origin.
 *
 * - POST /api/v1/login/otp `{ code }` — after /api/v1/login answered 401 MFA_REQUIRED (and set the challenge cookie)
 * - GET /api/v1/mfa — `{ enabled, pending, recoveryCodesLeft }`
 * - POST /api/v1/mfa/totp `{ password? }` — starts enrolment: `{ secret, otpauthUri, qrCodeDataUrl }`; the password
 *   is needed unless the session signed in within REAUTH_WINDOW_SECONDS (401 STEP_UP_REQUIRED)
 * - POST /api/v1/mfa/totp/confirm `{ code }` — `{ recoveryCodes }` (shown once)
 * - POST /api/v1/mfa/recovery-codes `{ code }` — new `{ recoveryCodes }`
 * - POST /api/v1/mfa/totp/disable `{ password, code }` — 204
 */
export async function mfaApiRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;
  const json = { errorFormat: "json" as const };

  app.addHook("preHandler", jsonSameOriginOnly);

  app.post(
    "/api/v1/login/otp",
    { config: { ...json, rateLimit: routeRateLimit(config, "otp") } },
    async (request, reply) => {
      const { code } = parse(mfaSchemas.code, request.body);
      const current = await request.currentSession();
      try {
        const { user, session, token } = await signInWithSecondFactor(app.ctx, request.log, {
          challengeToken: mfaCookie(request, config),
          code,
          meta: request.meta,
          existing: current?.session ?? null,
        });
        clearMfaCookie(reply, config);
        setSessionCookie(reply, config, token, session.expiresAt);
        return { user: userJson(user), session: sessionJson(session, session.id) };
      } catch (error) {
        if (error instanceof AppError && error.code === "MFA_CHALLENGE_EXPIRED") clearMfaCookie(reply, config);
        throw error;
      }
    },
  );

  const mfa = { config: { ...json, rateLimit: routeRateLimit(config, "mfa") } };

  app.get("/api/v1/mfa", { config: json }, async (request) => {
    const current = await requireSession(request);
    return totpStatus(app.ctx, current.user.id);
  });

  app.post("/api/v1/mfa/totp", mfa, async (request, reply) => {
    const current = await requireSession(request);
    const { password } = parse(mfaSchemas.reauth, request.body ?? {});
    const enrolment = await startTotpEnrolment(app.ctx, request.meta, { ...current, password });
    return reply.code(201).send(enrolment);
  });

  app.post("/api/v1/mfa/totp/confirm", mfa, async (request) => {
    const current = await requireSession(request);
    const { code } = parse(mfaSchemas.code, request.body);
    const result = await confirmTotpEnrolment(app.ctx, request.meta, { userId: current.user.id, code });
    sendInBackground(
      app.ctx.mailer,
      accountEmail(config, { kind: "mfa_enabled", ...recipient(current.user, request.meta) }),
      request.log,
    );
    return result;
  });

  app.post("/api/v1/mfa/recovery-codes", mfa, async (request) => {
    const current = await requireSession(request);
    const { code } = parse(mfaSchemas.code, request.body);
    const result = await regenerateRecoveryCodes(app.ctx, request.meta, { userId: current.user.id, code });
    sendInBackground(
      app.ctx.mailer,
      accountEmail(config, { kind: "mfa_recovery_codes", ...recipient(current.user, request.meta) }),
      request.log,
    );
    return result;
  });

  app.post("/api/v1/mfa/totp/disable", mfa, async (request, reply) => {
    const current = await requireSession(request);
    const input = parse(mfaSchemas.disable, request.body);
    await disableTotpWithPassword(app.ctx, request.meta, { user: current.user, ...input });
    sendInBackground(
      app.ctx.mailer,
      accountEmail(config, { kind: "mfa_disabled", ...recipient(current.user, request.meta) }),
      request.log,
    );
    return reply.code(204).send();
  });
}
