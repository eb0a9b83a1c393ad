import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { clearSessionCookie } from "../../http/session.ts";
import { confirmEmailLink, inspectEmailLink } from "../../libraries/accounts/email-links.ts";
import { checkResetToken, requestPasswordReset, resetPassword } from "../../libraries/accounts/passwords.ts";
import { accountSchemas } from "../../libraries/accounts/schemas.ts";
import { parse } from "../../validation.ts";
import { formRoute } from "./form-route.ts";
import { continuationFrom, destination, errorMap, renderPage, seeOther, str, withContinuation } from "./render.ts";

const html = { errorFormat: "html" as const };

/**
 * Pages reached from email links. A GET never uses a token: link scanners and previews fetch links, so the page only
 * shows a button, and the POST (with CSRF protection) does the work.
 */
export async function emailLinkPages(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;

  app.get("/verify-email", { config: html }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const token = str(query.token, 200) ?? "";
    const link = await inspectEmailLink(app.ctx, token);
    return renderPage(request, reply, "verify-email", {
      title: "Confirm your email address",
      continuation: continuationFrom(query),
      token,
      purpose: link.purpose,
      newEmail: link.newEmail,
    });
  });

  app.post(
    "/verify-email",
    { config: { ...html, rateLimit: routeRateLimit(config, "verify_email") }, preHandler: app.csrfProtection },
    async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const continuation = continuationFrom(body);
      const { token } = parse(accountSchemas.verifyEmail, body);
      const current = await request.currentSession();
      let result: Awaited<ReturnType<typeof confirmEmailLink>>;
      try {
        result = await confirmEmailLink(app.ctx, request.log, { token, meta: request.meta });
      } catch (error) {
        if (error instanceof AppError && error.code === "CONFLICT") {
          return renderPage(
            request,
            reply,
            "message",
            {
              title: "Email address not changed",
              heading: "Email address not changed",
              paragraphs: [error.message, "Your account keeps its current email address."],
              action: { href: "/account", label: "Go to your account" },
            },
            error.status,
          );
        }
        throw error;
      }
      if (result.purpose === "change_email") return seeOther(reply, "/account?notice=email_changed");
      // The link signs nobody in (libraries/accounts.ts, confirmEmailLink): a browser already signed in as this user
      // goes on; any other goes to the sign-in form, which then continues to the app.
      if (current?.user.id === result.user.id) {
        return seeOther(reply, continuation.returnTo ? destination(continuation) : "/account?notice=verified");
      }
      return seeOther(reply, withContinuation("/login", continuation, { notice: "verified" }));
    },
  );

  app.get("/forgot-password", { config: html }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const continuation = continuationFrom(query);
    return renderPage(request, reply, "forgot-password", {
      title: "Reset your password",
      continuation,
      values: { email: str(query.email, 254) },
      links: { login: withContinuation("/login", continuation) },
    });
  });

  app.post(
    "/forgot-password",
    { config: { ...html, rateLimit: routeRateLimit(config, "forgot_password") }, preHandler: app.csrfProtection },
    formRoute({
      handle: async (request, reply, { body, continuation }) => {
        const { email } = parse(accountSchemas.forgotPassword, body);
        await requestPasswordReset(app.ctx, request.log, { email, meta: request.meta, continuation });
        return seeOther(reply, withContinuation("/forgot-password/sent", continuation));
      },
      view: (request, reply, { body, continuation }, error) =>
        renderPage(
          request,
          reply,
          "forgot-password",
          {
            title: "Reset your password",
            continuation,
            values: { email: str(body.email, 254) },
            errors: errorMap(error),
            links: { login: withContinuation("/login", continuation) },
          },
          error.status,
        ),
    }),
  );

  app.get("/forgot-password/sent", { config: html }, async (request, reply) => {
    const continuation = continuationFrom(request.query);
    return renderPage(request, reply, "message", {
      title: "Check your email",
      continuation,
      heading: "Check your email",
      paragraphs: [
        "If an account uses that address, we sent it a link to choose a new password.",
        {
          key: "The link works once and expires in {n} minutes.",
          params: { n: Math.round(config.tokens.passwordResetTtlSeconds / 60) },
        },
      ],
      action: { href: withContinuation("/login", continuation), label: "Back to sign in" },
    });
  });

  app.get("/reset-password", { config: html }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const token = str(query.token, 200) ?? "";
    await checkResetToken(app.ctx, token);
    return renderPage(request, reply, "reset-password", {
      title: "Choose a new password",
      continuation: continuationFrom(query),
      token,
    });
  });

  app.post(
    "/reset-password",
    { config: { ...html, rateLimit: routeRateLimit(config, "reset_password") }, preHandler: app.csrfProtection },
    formRoute({
      handle: async (request, reply, { body, continuation }) => {
        const input = parse(accountSchemas.resetPassword, body);
        await resetPassword(app.ctx, request.log, { ...input, meta: request.meta });
        // Every session of the user has ended, this browser's included.
        clearSessionCookie(reply, config);
        return seeOther(reply, withContinuation("/login", continuation, { notice: "password_reset" }));
      },
      view: (request, reply, { body, continuation }, error) =>
        renderPage(
          request,
          reply,
          "reset-password",
          { title: "Choose a new password", continuation, token: str(body.token, 200) ?? "", errors: errorMap(error) },
          error.status,
        ),
    }),
  );
}
