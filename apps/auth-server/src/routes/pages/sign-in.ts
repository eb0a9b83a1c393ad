import type { FastifyInstance } from "fastify";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { setSessionCookie } from "../../http/session.ts";
import { register } from "../../libraries/accounts/registration.ts";
import { accountSchemas } from "../../libraries/accounts/schemas.ts";
import { signInWithPassword } from "../../libraries/accounts/sign-in.ts";
import { parse } from "../../validation.ts";
import { idpHintLocation, providerButtons } from "./federation.ts";
import { formRoute } from "./form-route.ts";
import { setMfaCookie } from "./mfa-cookie.ts";
import {
  continuationFrom,
  destination,
  errorMap,
  type Notice,
  renderPage,
  seeOther,
  str,
  withContinuation,
} from "./render.ts";

const html = { errorFormat: "html" as const };

const NOTICES: Record<string, Notice> = {
  signed_out: { kind: "ok", text: "You are signed out." },
  password_reset: { kind: "ok", text: "Your password was changed. Sign in with your new password." },
  deleted: { kind: "ok", text: "Your account was deleted." },
  verified: { kind: "ok", text: "Your email address is confirmed. Sign in to continue." },
};

/** GET/POST /login, GET/POST /register, GET /register/check-email. */
export async function signInPages(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;

  app.get("/login", { config: html }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const continuation = continuationFrom(query);
    // prompt=login (or max_age) from /authorize forces the form even when a session exists.
    if (str(query.prompt) !== "login" && (await request.currentSession())) {
      return seeOther(reply, destination(continuation));
    }
    const hinted = await idpHintLocation(app, query, continuation); // idp_hint: straight to that provider
    if (hinted) return seeOther(reply, hinted);
    return renderPage(request, reply, "login", {
      title: "Sign in",
      continuation,
      notice: NOTICES[str(query.notice, 40) ?? ""],
      links: loginLinks(continuation),
      providers: await providerButtons(app, continuation),
      // OIDC login_hint, passed on by /authorize: the email field starts filled in.
      values: { email: str(query.login_hint, 254) },
    });
  });

  app.post(
    "/login",
    { config: { ...html, rateLimit: routeRateLimit(config, "login") }, preHandler: app.csrfProtection },
    formRoute({
      handle: async (request, reply, { body, continuation }) => {
        const input = parse(accountSchemas.login, body);
        const current = await request.currentSession();
        const result = await signInWithPassword(app.ctx, {
          email: input.email,
          password: input.password,
          meta: request.meta,
          existing: current?.session ?? null,
          clientId: continuation.clientId,
          log: request.log,
        });
        if ("secondFactor" in result) {
          // No session yet: the code step (/login/otp) finishes the sign-in.
          setMfaCookie(reply, config, result.secondFactor.token, result.secondFactor.expiresAt);
          const step = result.methods.totp ? "/login/otp" : "/login/passkey";
          return seeOther(reply, withContinuation(step, continuation));
        }
        const { session, token } = result;
        setSessionCookie(reply, config, token, session.expiresAt);
        return seeOther(reply, destination(continuation));
      },
      view: async (request, reply, { body, continuation }, error) =>
        renderPage(
          request,
          reply,
          "login",
          {
            title: "Sign in",
            continuation,
            values: { email: str(body.email, 254) },
            errors: error.code === "VALIDATION_FAILED" ? errorMap(error) : {},
            formError: error.code === "VALIDATION_FAILED" ? undefined : error.message,
            links: loginLinks(continuation),
            providers: await providerButtons(app, continuation),
          },
          error.status,
        ),
    }),
  );

  app.get("/register", { config: html }, async (request, reply) => {
    const continuation = continuationFrom(request.query);
    return renderPage(request, reply, "register", {
      title: "Create your account",
      continuation,
      documents: config.privacy,
      links: { login: withContinuation("/login", continuation) },
      providers: await providerButtons(app, continuation),
    });
  });

  app.post(
    "/register",
    { config: { ...html, rateLimit: routeRateLimit(config, "register") }, preHandler: app.csrfProtection },
    formRoute({
      handle: async (request, reply, { body, continuation }) => {
        const input = parse(accountSchemas.register, body);
        const current = await request.currentSession();
        const result = await register(app.ctx, request.log, {
          ...input,
          meta: request.meta,
          existing: current?.session ?? null,
          continuation,
        });
        if (result.outcome === "signed_in") {
          setSessionCookie(reply, config, result.signedIn.token, result.signedIn.session.expiresAt);
          return seeOther(reply, destination(continuation));
        }
        return seeOther(reply, withContinuation("/register/check-email", continuation));
      },
      view: async (request, reply, { body, continuation }, error) => {
        const errors = errorMap(error);
        return renderPage(
          request,
          reply,
          "register",
          {
            title: "Create your account",
            continuation,
            documents: config.privacy,
            values: { email: str(body.email, 254), displayName: str(body.displayName, 100) },
            errors,
            formError: Object.keys(errors).length ? undefined : error.message,
            links: { login: withContinuation("/login", continuation) },
            providers: await providerButtons(app, continuation),
          },
          error.status,
        );
      },
    }),
  );

  app.get("/register/check-email", { config: html }, async (request, reply) => {
    const continuation = continuationFrom(request.query);
    return renderPage(request, reply, "message", {
      title: "Check your email",
      continuation,
      heading: "Check your email",
      paragraphs: [
        "We sent you an email. Open the link in it to confirm your address and finish creating your account.",
        "If you already have an account with this address, the email tells you how to sign in instead.",
        "Nothing arrived after a few minutes? Look in your spam folder, or try again.",
      ],
      action: { href: withContinuation("/login", continuation), label: "Go to sign in" },
    });
  });

  // POST /logout (the account page's sign-out button) is served by the OpenID RP-initiated logout handler
  // (routes/oauth/logout.ts): the same CSRF-protected form post, which also honours post_logout_redirect_uri.
}

function loginLinks(continuation: Parameters<typeof withContinuation>[1]) {
  return {
    register: withContinuation("/register", continuation),
    forgot: withContinuation("/forgot-password", continuation),
  };
}
