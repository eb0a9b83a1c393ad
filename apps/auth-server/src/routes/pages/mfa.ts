import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { type CurrentSession, requireSession, setSessionCookie } from "../../http/session.ts";
import { signInWithSecondFactor } from "../../libraries/accounts/sign-in.ts";
import { sendInBackground } from "../../libraries/mailer/index.ts";
import { accountEmail, type MfaChange, recipient } from "../../libraries/mailer/messages.ts";
import {
  confirmTotpEnrolment,
  disableTotpWithPassword,
  pendingTotpEnrolment,
  regenerateRecoveryCodes,
} from "../../libraries/mfa/enrolment.ts";
import { totpStatus } from "../../libraries/mfa/factor.ts";
import { mfaSchemas } from "../../libraries/mfa/schemas.ts";
import { startTotpEnrolment } from "../../libraries/mfa/start-enrolment.ts";
import type { UserRow } from "../../queries/users.ts";
import { parse } from "../../validation.ts";
import { formRoute, signedInFormRoute } from "./form-route.ts";
import { clearMfaCookie, mfaCookie } from "./mfa-cookie.ts";
import {
  continuationFrom,
  destination,
  errorMap,
  type Notice,
  type PageData,
  renderPage,
  seeOther,
  str,
  withContinuation,
} from "./render.ts";

const html = { errorFormat: "html" as const };

/** Errors shown on the code forms themselves (anything else goes to the error page). */
const FORM_ERRORS = new Set([
  "VALIDATION_FAILED",
  "INVALID_OTP",
  "INVALID_CREDENTIALS",
  "LOGIN_THROTTLED",
  "IP_SUSPENDED",
  "ACCOUNT_LOCKED",
  "ACCOUNT_DISABLED",
  "EMAIL_NOT_VERIFIED",
  "STEP_UP_REQUIRED",
]);
const isFormError = (error: unknown): error is AppError => error instanceof AppError && FORM_ERRORS.has(error.code);

const NOTICES: Record<string, Notice> = {
  disabled: { kind: "ok", text: "Two-step verification is off." },
};

/** Renders one of the views under views/mfa inside the hosted-pages layout. */
const renderMfa = (request: FastifyRequest, reply: FastifyReply, view: string, data: PageData, status = 200) =>
  renderPage(request, reply, `../mfa/${view}`, data, status);

/** The status and Retry-After of an error re-rendered on a form (429s keep their Retry-After). */
function withHeaders(reply: FastifyReply, error: AppError): number {
  if (error.headers) reply.headers(error.headers);
  return error.status;
}

/**
 * The second sign-in step (GET/POST /login/otp) and two-step verification on the account page (/account/mfa...):
 * set up with a QR code and a confirmation code, recovery codes shown once, new recovery codes, turning it off with
 * the password and a code. Every form posts with a CSRF token; every code-taking POST is rate limited.
 */
export async function mfaPages(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;
  const notify = (user: UserRow, kind: MfaChange, request: FastifyRequest) =>
    sendInBackground(app.ctx.mailer, accountEmail(config, { kind, ...recipient(user, request.meta) }), request.log);
  const otpPost = { config: { ...html, rateLimit: routeRateLimit(config, "otp") }, preHandler: app.csrfProtection };
  const mfaPost = { config: { ...html, rateLimit: routeRateLimit(config, "mfa") }, preHandler: app.csrfProtection };

  app.get("/login/otp", { config: html }, async (request, reply) => {
    const continuation = continuationFrom(request.query);
    const links = { login: withContinuation("/login", continuation) };
    if (!mfaCookie(request, config)) return seeOther(reply, links.login);
    return renderMfa(request, reply, "otp", { title: "Two-step verification", continuation, links });
  });

  app.post(
    "/login/otp",
    otpPost,
    formRoute({
      shows: isFormError,
      handle: async (request, reply, { body, continuation }) => {
        const { code } = parse(mfaSchemas.code, body);
        const current = await request.currentSession();
        const { session, token } = await signInWithSecondFactor(app.ctx, request.log, {
          challengeToken: mfaCookie(request, config),
          code,
          meta: request.meta,
          existing: current?.session ?? null,
          clientId: continuation.clientId,
        });
        clearMfaCookie(reply, config);
        setSessionCookie(reply, config, token, session.expiresAt);
        return seeOther(reply, destination(continuation));
      },
      recover: (request, reply, { continuation }, error) => {
        if (!(error instanceof AppError && error.code === "MFA_CHALLENGE_EXPIRED")) return undefined;
        clearMfaCookie(reply, config);
        const links = { login: withContinuation("/login", continuation) };
        return renderMfa(
          request,
          reply,
          "otp",
          { title: "Two-step verification", continuation, links, expired: true, formError: error.message },
          error.status,
        );
      },
      view: (request, reply, { continuation }, error) => {
        const errors = errorMap(error);
        return renderMfa(
          request,
          reply,
          "otp",
          {
            title: "Two-step verification",
            continuation,
            links: { login: withContinuation("/login", continuation) },
            errors,
            formError: errors.code ? undefined : error.message,
          },
          withHeaders(reply, error),
        );
      },
    }),
  );

  async function renderManage(
    request: FastifyRequest,
    reply: FastifyReply,
    current: CurrentSession,
    extra: { notice?: Notice | undefined; form?: "disable" | "regen" | "setup"; error?: AppError } = {},
  ) {
    const errors = extra.error ? errorMap(extra.error) : {};
    return renderMfa(
      request,
      reply,
      "manage",
      {
        title: "Two-step verification",
        status: await totpStatus(app.ctx, current.user.id),
        hasPassword: Boolean(current.user.passwordHash),
        notice: extra.notice,
        form: extra.form,
        errors,
        formError: extra.error && Object.keys(errors).length === 0 ? extra.error.message : undefined,
      },
      extra.error ? withHeaders(reply, extra.error) : 200,
    );
  }

  app.get("/account/mfa", { config: html }, async (request, reply) => {
    const current = await requireSession(request, reply, "/account/mfa");
    if (!current) return reply;
    return renderManage(request, reply, current, {
      notice: NOTICES[str((request.query as Record<string, unknown>).notice, 40) ?? ""],
    });
  });

  app.post("/account/mfa/setup", mfaPost, async (request, reply) => {
    const current = await requireSession(request, reply, "/account/mfa");
    if (!current) return reply;
    try {
      const { password } = parse(mfaSchemas.reauth, request.body ?? {});
      const enrolment = await startTotpEnrolment(app.ctx, request.meta, {
        ...current,
        password: password || undefined,
      });
      return renderMfa(request, reply, "setup", { title: "Set up your authenticator app", enrolment });
    } catch (error) {
      if (error instanceof AppError && error.code === "MFA_ALREADY_ENABLED") return seeOther(reply, "/account/mfa");
      if (isFormError(error)) return renderManage(request, reply, current, { form: "setup", error });
      throw error;
    }
  });

  /** MFA_NOT_ENABLED (and, when confirming, MFA_ALREADY_ENABLED) send the browser back to /account/mfa. */
  const backToManage =
    (...codes: string[]) =>
    (_request: FastifyRequest, reply: FastifyReply, _form: unknown, error: unknown) =>
      error instanceof AppError && codes.includes(error.code) ? seeOther(reply, "/account/mfa") : undefined;

  app.post(
    "/account/mfa/confirm",
    mfaPost,
    signedInFormRoute("/account/mfa", {
      shows: isFormError,
      handle: async (request, reply, { body, current }) => {
        const { code } = parse(mfaSchemas.code, body);
        const { recoveryCodes } = await confirmTotpEnrolment(app.ctx, request.meta, { userId: current.user.id, code });
        notify(current.user, "mfa_enabled", request);
        return renderMfa(request, reply, "recovery-codes", { title: "Your recovery codes", codes: recoveryCodes });
      },
      recover: backToManage("MFA_NOT_ENABLED", "MFA_ALREADY_ENABLED", "MFA_ENROLMENT_EXPIRED"),
      view: async (request, reply, { current }, error) => {
        // Show the same secret again: it is still the pending one.
        const enrolment = await pendingTotpEnrolment(app.ctx, current.user);
        if (!enrolment) return seeOther(reply, "/account/mfa");
        const errors = errorMap(error);
        return renderMfa(
          request,
          reply,
          "setup",
          {
            title: "Set up your authenticator app",
            enrolment,
            errors,
            formError: errors.code ? undefined : error.message,
          },
          withHeaders(reply, error),
        );
      },
    }),
  );

  app.post(
    "/account/mfa/recovery-codes",
    mfaPost,
    signedInFormRoute("/account/mfa", {
      shows: isFormError,
      handle: async (request, reply, { current }) => {
        const { code } = parse(mfaSchemas.code, request.body);
        const { recoveryCodes } = await regenerateRecoveryCodes(app.ctx, request.meta, {
          userId: current.user.id,
          code,
        });
        notify(current.user, "mfa_recovery_codes", request);
        return renderMfa(request, reply, "recovery-codes", { title: "Your recovery codes", codes: recoveryCodes });
      },
      recover: backToManage("MFA_NOT_ENABLED"),
      view: (request, reply, { current }, error) => renderManage(request, reply, current, { form: "regen", error }),
    }),
  );

  app.post(
    "/account/mfa/disable",
    mfaPost,
    signedInFormRoute("/account/mfa", {
      shows: isFormError,
      handle: async (request, reply, { current }) => {
        const input = parse(mfaSchemas.disable, request.body);
        await disableTotpWithPassword(app.ctx, request.meta, { user: current.user, ...input });
        notify(current.user, "mfa_disabled", request);
        return seeOther(reply, "/account/mfa?notice=disabled");
      },
      recover: backToManage("MFA_NOT_ENABLED"),
      view: (request, reply, { current }, error) => renderManage(request, reply, current, { form: "disable", error }),
    }),
  );
}
