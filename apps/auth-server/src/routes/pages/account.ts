import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { type CurrentSession, clearSessionCookie, requireSession } from "../../http/session.ts";
import { requestEmailChange, resendVerification } from "../../libraries/accounts/email-links.ts";
import { changePassword } from "../../libraries/accounts/passwords.ts";
import {
  deleteAccount,
  endOtherSessions,
  endUserSession,
  updateProfile,
  userSessions,
} from "../../libraries/accounts/profile.ts";
import { accountSchemas } from "../../libraries/accounts/schemas.ts";
import { termsAcceptanceNeeded } from "../../libraries/accounts/terms.ts";
import { userAuthorizationOverview } from "../../libraries/authorization/index.ts";
import { userConsents } from "../../libraries/oauth/consent.ts";
import { type ActivityItem, securityActivity } from "../../libraries/privacy/activity.ts";
import type { SessionRow } from "../../libraries/sessions.ts";
import { parse } from "../../validation.ts";
import { sendAccountTermsPage } from "./account-terms.ts";
import { identitiesSection } from "./federation.ts";
import { signedInFormRoute } from "./form-route.ts";
import { errorMap, isFormError, type Notice, renderPage, seeOther, str } from "./render.ts";

const html = { errorFormat: "html" as const };

const NOTICES: Record<string, Notice> = {
  verified: { kind: "ok", text: "Your email address is confirmed." },
  email_changed: { kind: "ok", text: "Your email address was changed." },
  email_sent: { kind: "ok", text: "We sent a confirmation link to your new address. Open it to finish the change." },
  verification_sent: { kind: "ok", text: "We sent a new confirmation link. Older links no longer work." },
  profile_saved: { kind: "ok", text: "Your profile was saved." },
  password_changed: { kind: "ok", text: "Your password was changed. Your other devices were signed out." },
  session_ended: { kind: "ok", text: "The session has ended." },
  others_ended: { kind: "ok", text: "You were signed out everywhere else." },
  consent_revoked: { kind: "ok", text: "The application no longer has access to your account." },
};

type AccountForm = "profile" | "password" | "email" | "delete" | "sessions";

/** /account and its forms: profile, password, email, sessions, deletion. Every form posts with a CSRF token. */
export async function accountPages(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;

  async function renderAccount(
    request: FastifyRequest,
    reply: FastifyReply,
    current: CurrentSession,
    extra: { notice?: Notice | undefined; form?: AccountForm; error?: AppError; values?: Record<string, unknown> } = {},
  ) {
    const [sessions, authorization] = await Promise.all([
      userSessions(app.ctx, current.user.id),
      userAuthorizationOverview(app.ctx, current.user.id),
    ]);
    const fieldErrors = extra.error ? errorMap(extra.error) : {};
    return renderPage(
      request,
      reply,
      "account",
      {
        title: "Your account",
        wide: true,
        notice: extra.notice,
        user: {
          email: current.user.email,
          displayName: current.user.displayName ?? "",
          emailVerified: Boolean(current.user.emailVerifiedAt),
          locale: current.user.locale,
        },
        sessions: sessions.map((s) => describeSession(s, current.session.id)),
        authorization,
        consents: (await userConsents(app.ctx, current.user.id)).map((c) => ({
          ...c,
          grantedAt: c.grantedAt.toISOString().slice(0, 10),
          grantedOn: c.grantedAt,
          scopes: c.scopes.join(", "),
        })),
        form: extra.form,
        errors: fieldErrors,
        formError: extra.error && Object.keys(fieldErrors).length === 0 ? extra.error.message : undefined,
        values: extra.values ?? {},
        ...(await identitiesSection(app, current.user)),
        activity: (await securityActivity(app.ctx, current.user.id)).map(describeActivity),
      },
      extra.error?.status ?? 200,
    );
  }

  /** An account form whose action answers with where to go; field errors re-render the page next to the form. */
  function formAction(
    form: AccountForm,
    action: (
      current: CurrentSession,
      body: Record<string, unknown>,
      request: FastifyRequest,
      reply: FastifyReply,
    ) => Promise<string>,
  ) {
    return signedInFormRoute("/account", {
      handle: async (request, reply, { body, current }) => seeOther(reply, await action(current, body, request, reply)),
      shows: (error): error is AppError =>
        isFormError(error) || (error instanceof AppError && error.code === "SESSION_NOT_FOUND"),
      view: (request, reply, { body, current }, error) =>
        renderAccount(request, reply, current, {
          form,
          error,
          values: { displayName: str(body.displayName, 100), newEmail: str(body.newEmail, 254) },
        }),
    });
  }

  const post = { config: html, preHandler: app.csrfProtection };
  // Forms that check the current password count against the sign-in limit: they are password guesses too.
  const passwordPost = {
    config: { ...html, rateLimit: routeRateLimit(config, "login") },
    preHandler: app.csrfProtection,
  };

  app.get("/account", { config: html }, async (request, reply) => {
    const current = await requireSession(request, reply, "/account");
    if (!current) return reply;
    const notice = NOTICES[str((request.query as Record<string, unknown>).notice, 40) ?? ""];
    return renderAccount(request, reply, current, { notice });
  });

  app.post(
    "/account/profile",
    post,
    formAction("profile", async (current, body, request) => {
      const { displayName, locale } = parse(accountSchemas.profile, body);
      await updateProfile(app.ctx, {
        user: current.user,
        displayName: displayName ?? null,
        locale: locale === undefined ? undefined : locale || null,
        meta: request.meta,
      });
      return "/account?notice=profile_saved";
    }),
  );

  app.post(
    "/account/password",
    passwordPost,
    formAction("password", async (current, body, request) => {
      const input = parse(accountSchemas.changePassword, body);
      await changePassword(app.ctx, request.log, {
        user: current.user,
        session: current.session,
        ...input,
        meta: request.meta,
      });
      return "/account?notice=password_changed";
    }),
  );

  app.post(
    "/account/email",
    passwordPost,
    formAction("email", async (current, body, request) => {
      const input = parse(accountSchemas.changeEmail, body);
      await requestEmailChange(app.ctx, request.log, { user: current.user, ...input, meta: request.meta });
      return "/account?notice=email_sent";
    }),
  );

  app.post(
    "/account/resend-verification",
    { config: { ...html, rateLimit: routeRateLimit(config, "verify_email") }, preHandler: app.csrfProtection },
    formAction("profile", async (current, _body, request) => {
      await resendVerification(app.ctx, request.log, current.user, undefined, request.meta);
      return "/account?notice=verification_sent";
    }),
  );

  app.post(
    "/account/sessions/end",
    post,
    formAction("sessions", async (current, body, request, reply) => {
      const { sessionId } = parse(accountSchemas.sessionId, body);
      await endUserSession(app.ctx, {
        userId: current.user.id,
        sessionId,
        meta: request.meta,
        currentSessionId: current.session.id,
      });
      if (sessionId !== current.session.id) return "/account?notice=session_ended";
      clearSessionCookie(reply, config);
      return "/login?notice=signed_out";
    }),
  );

  app.post(
    "/account/sessions/end-others",
    post,
    formAction("sessions", async (current, _body, request) => {
      await endOtherSessions(app.ctx, {
        userId: current.user.id,
        currentSessionId: current.session.id,
        meta: request.meta,
      });
      return "/account?notice=others_ended";
    }),
  );

  app.post(
    "/account/delete",
    passwordPost,
    signedInFormRoute("/account", {
      handle: async (request, reply, { body, current }) => {
        const { currentPassword } = parse(accountSchemas.deleteAccount, body);
        await deleteAccount(app.ctx, { user: current.user, currentPassword, meta: request.meta });
        clearSessionCookie(reply, config);
        return seeOther(reply, "/login?notice=deleted");
      },
      // A user who has not accepted the current terms deletes from the terms box (account-terms.ts): shown there again.
      view: async (request, reply, { current }, error) =>
        (await termsAcceptanceNeeded(app.ctx.db, config, current.user.id))
          ? sendAccountTermsPage(request, reply, current, "/account", error)
          : renderAccount(request, reply, current, { form: "delete", error }),
    }),
  );
}

/** A session as the account page lists it: a readable device name, IP and times (UTC). */
export function describeSession(session: SessionRow, currentId: string) {
  return {
    id: session.id,
    current: session.id === currentId,
    device: deviceName(session.userAgent),
    ip: session.ip ?? "unknown",
    signedIn: formatTime(session.authenticatedAt),
    lastSeen: formatTime(session.lastSeenAt),
    // The page formats these for its language (the strings above are the English, UTC forms).
    signedInAt: session.authenticatedAt,
    lastSeenAt: session.lastSeenAt,
  };
}

/** One line of the security activity (#16), as the account page shows it. */
function describeActivity(a: ActivityItem) {
  return {
    label: a.label,
    newDevice: a.newDevice,
    when: formatTime(a.at),
    at: a.at,
    device: a.userAgent ? deviceName(a.userAgent) : "",
    ip: a.ip ?? "",
  };
}

function formatTime(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** A short, readable name from a user agent ("Chrome on Linux"); falls back to the truncated string. */
export function deviceName(userAgent: string | null): string {
  if (!userAgent) return "Unknown device";
  const browser = /Edg\//.test(userAgent)
    ? "Edge"
    : /OPR\//.test(userAgent)
      ? "Opera"
      : /Firefox\//.test(userAgent)
        ? "Firefox"
        : /(Chrome|Chromium|HeadlessChrome)\//.test(userAgent)
          ? "Chrome"
          : /Safari\//.test(userAgent)
            ? "Safari"
            : undefined;
  const os = /Android/.test(userAgent)
    ? "Android"
    : /(iPhone|iPad|iPod)/.test(userAgent)
      ? "iOS"
      : /Windows/.test(userAgent)
        ? "Windows"
        : /Mac OS X|Macintosh/.test(userAgent)
          ? "macOS"
          : /Linux/.test(userAgent)
            ? "Linux"
            : undefined;
  if (browser && os) return `${browser} on ${os}`;
  return browser ?? os ?? userAgent.slice(0, 60);
}
