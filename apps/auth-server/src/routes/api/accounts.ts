import type { FastifyInstance, FastifyReply } from "fastify";
import { AppError, errorBody } from "../../errors/index.ts";
import { jsonSameOriginOnly } from "../../http/csrf.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { clearSessionCookie, requireSession, setSessionCookie } from "../../http/session.ts";
import { confirmEmailLink, requestEmailChange, resendVerification } from "../../libraries/accounts/email-links.ts";
import { changePassword, requestPasswordReset, resetPassword } from "../../libraries/accounts/passwords.ts";
import {
  deleteAccount,
  endOtherSessions,
  endUserSession,
  updateProfile,
  userSessions,
} from "../../libraries/accounts/profile.ts";
import { register } from "../../libraries/accounts/registration.ts";
import { accountSchemas } from "../../libraries/accounts/schemas.ts";
import { signInWithPassword, signOut } from "../../libraries/accounts/sign-in.ts";
import type { SessionRow } from "../../libraries/sessions.ts";
import type { UserRow } from "../../queries/users.ts";
import { parse } from "../../validation.ts";
import { setMfaCookie } from "../pages/mfa-cookie.ts";

/**
 * The account JSON API under /api/v1 (same behaviour as the hosted pages, for scripts and tests). Authentication is
 * Tessera's session cookie, as set by POST /api/v1/login. Errors use the catalog shape.
 *
 * CSRF: `jsonSameOriginOnly` (http/csrf.ts): state changes must be `application/json` and, from a browser,
 * same-origin.
 */
export async function accountApiRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;
  const json = { errorFormat: "json" as const };

  app.addHook("preHandler", jsonSameOriginOnly);

  function sendSignedIn(reply: FastifyReply, user: UserRow, session: SessionRow, token: string, status = 200) {
    setSessionCookie(reply, config, token, session.expiresAt);
    return reply.code(status).send({ user: userJson(user), session: sessionJson(session, session.id) });
  }

  app.post(
    "/api/v1/register",
    { config: { ...json, rateLimit: routeRateLimit(config, "register") } },
    async (request, reply) => {
      const input = parse(accountSchemas.register, request.body);
      const current = await request.currentSession();
      const result = await register(app.ctx, request.log, {
        ...input,
        meta: request.meta,
        existing: current?.session ?? null,
      });
      if (result.outcome === "signed_in") {
        const { user, session, token } = result.signedIn;
        return sendSignedIn(reply, user, session, token);
      }
      // The same answer whether or not the email already had an account.
      return reply.code(202).send({ status: "check_email" });
    },
  );

  app.post(
    "/api/v1/login",
    { config: { ...json, rateLimit: routeRateLimit(config, "login") } },
    async (request, reply) => {
      const input = parse(accountSchemas.login, request.body);
      const current = await request.currentSession();
      const result = await signInWithPassword(app.ctx, {
        ...input,
        meta: request.meta,
        existing: current?.session ?? null,
        log: request.log,
      });
      if ("secondFactor" in result) {
        // No session yet: 401 MFA_REQUIRED with the challenge cookie; POST /api/v1/login/otp finishes the sign-in.
        setMfaCookie(reply, config, result.secondFactor.token, result.secondFactor.expiresAt);
        return reply.code(401).send(errorBody(new AppError("MFA_REQUIRED"), request.id));
      }
      const { user, session, token } = result;
      return sendSignedIn(reply, user, session, token);
    },
  );

  app.post("/api/v1/logout", { config: json }, async (request, reply) => {
    const current = await request.currentSession();
    if (current) await signOut(app.ctx, current.session, request.meta);
    clearSessionCookie(reply, config);
    return reply.code(204).send();
  });

  app.post(
    "/api/v1/verify-email",
    { config: { ...json, rateLimit: routeRateLimit(config, "verify_email") } },
    async (request, reply) => {
      const { token } = parse(accountSchemas.verifyEmail, request.body);
      // Signs nobody in (see confirmEmailLink): sign in with the password afterwards.
      const result = await confirmEmailLink(app.ctx, request.log, { token, meta: request.meta });
      return reply.send({ user: userJson(result.user) });
    },
  );

  app.post(
    "/api/v1/forgot-password",
    { config: { ...json, rateLimit: routeRateLimit(config, "forgot_password") } },
    async (request, reply) => {
      const { email } = parse(accountSchemas.forgotPassword, request.body);
      await requestPasswordReset(app.ctx, request.log, { email, meta: request.meta });
      return reply.code(202).send({ status: "check_email" });
    },
  );

  app.post(
    "/api/v1/reset-password",
    { config: { ...json, rateLimit: routeRateLimit(config, "reset_password") } },
    async (request, reply) => {
      const input = parse(accountSchemas.resetPassword, request.body);
      await resetPassword(app.ctx, request.log, { ...input, meta: request.meta });
      clearSessionCookie(reply, config);
      return reply.code(204).send();
    },
  );

  app.get("/api/v1/me", { config: json }, async (request) => {
    const { user } = await requireSession(request);
    return { user: userJson(user) };
  });

  app.patch("/api/v1/me", { config: json }, async (request) => {
    const current = await requireSession(request);
    const { displayName } = parse(accountSchemas.profile, request.body);
    const user = await updateProfile(app.ctx, {
      user: current.user,
      displayName: displayName ?? null,
      meta: request.meta,
    });
    return { user: userJson(user) };
  });

  app.post(
    "/api/v1/me/delete",
    { config: { ...json, rateLimit: routeRateLimit(config, "login") } },
    async (request, reply) => {
      const current = await requireSession(request);
      const { currentPassword } = parse(accountSchemas.deleteAccount, request.body);
      await deleteAccount(app.ctx, { user: current.user, currentPassword, meta: request.meta });
      clearSessionCookie(reply, config);
      return reply.code(204).send();
    },
  );

  app.post(
    "/api/v1/me/password",
    { config: { ...json, rateLimit: routeRateLimit(config, "login") } },
    async (request, reply) => {
      const current = await requireSession(request);
      const input = parse(accountSchemas.changePassword, request.body);
      await changePassword(app.ctx, request.log, {
        user: current.user,
        session: current.session,
        ...input,
        meta: request.meta,
      });
      return reply.code(204).send();
    },
  );

  app.post(
    "/api/v1/me/email",
    { config: { ...json, rateLimit: routeRateLimit(config, "login") } },
    async (request, reply) => {
      const current = await requireSession(request);
      const input = parse(accountSchemas.changeEmail, request.body);
      await requestEmailChange(app.ctx, request.log, { user: current.user, ...input, meta: request.meta });
      return reply.code(202).send({ status: "check_email" });
    },
  );

  app.post(
    "/api/v1/me/verification",
    { config: { ...json, rateLimit: routeRateLimit(config, "verify_email") } },
    async (request, reply) => {
      const current = await requireSession(request);
      await resendVerification(app.ctx, request.log, current.user, undefined, request.meta);
      return reply.code(202).send({ status: current.user.emailVerifiedAt ? "already_verified" : "check_email" });
    },
  );

  app.get("/api/v1/me/sessions", { config: json }, async (request) => {
    const current = await requireSession(request);
    const sessions = await userSessions(app.ctx, current.user.id);
    return { sessions: sessions.map((s) => sessionJson(s, current.session.id)) };
  });

  app.post("/api/v1/me/sessions/:sessionId/end", { config: json }, async (request, reply) => {
    const current = await requireSession(request);
    const { sessionId } = parse(accountSchemas.sessionId, request.params);
    await endUserSession(app.ctx, {
      userId: current.user.id,
      sessionId,
      meta: request.meta,
      currentSessionId: current.session.id,
    });
    if (sessionId === current.session.id) clearSessionCookie(reply, config);
    return reply.code(204).send();
  });

  app.post("/api/v1/me/sessions/end-others", { config: json }, async (request) => {
    const current = await requireSession(request);
    const ended = await endOtherSessions(app.ctx, {
      userId: current.user.id,
      currentSessionId: current.session.id,
      meta: request.meta,
    });
    return { ended };
  });
}

export function userJson(user: UserRow) {
  return {
    id: user.id,
    email: user.email,
    emailVerified: Boolean(user.emailVerifiedAt),
    displayName: user.displayName,
    createdAt: user.createdAt.toISOString(),
  };
}

export function sessionJson(session: SessionRow, currentId: string) {
  return {
    id: session.id,
    current: session.id === currentId,
    createdAt: session.createdAt.toISOString(),
    authenticatedAt: session.authenticatedAt.toISOString(),
    lastSeenAt: session.lastSeenAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
    ip: session.ip,
    userAgent: session.userAgent,
    amr: session.amr,
  };
}
