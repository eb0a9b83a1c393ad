import type { FastifyInstance } from "fastify";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { setSessionCookie } from "../../http/session.ts";
import { confirmEmailLink, emailLinkIsLive, sendLinkEmail } from "../../libraries/federation/email-link.ts";
import { cookieOf } from "./federation.ts";
import { setMfaCookie } from "./mfa-cookie.ts";
import { destination, renderPage, seeOther, str, withContinuation } from "./render.ts";

const html = { errorFormat: "html" as const };

/**
 * The emailed proof for a pending link (libraries/federation/email-link.ts):
 *
 *   POST /federation/link/email           send the link to the existing account's address
 *   GET  /federation/link/email?token=…   a confirmation page (a GET changes nothing: mail scanners open links)
 *   POST /federation/link/email           with the token: link and sign in, in the browser holding the pending link
 */
export async function federationEmailPages(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;
  const linkCookie = cookieOf(config, "fed_link");
  const post = {
    config: { ...html, rateLimit: routeRateLimit(config, "forgot_password") },
    preHandler: app.csrfProtection,
  };

  app.get("/federation/link/email", { config: html }, async (request, reply) => {
    const token = str((request.query as Record<string, unknown>).token, 200);
    const live = await emailLinkIsLive(app.ctx, token);
    return renderPage(
      request,
      reply,
      "federation-link-email",
      {
        title: "Link your sign-in",
        token: live ? token : undefined,
      },
      live ? 200 : 400,
    );
  });

  app.post("/federation/link/email", post, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const token = str(body.token, 200);
    if (!token) {
      const { email } = await sendLinkEmail(app.ctx, request.log, {
        pendingCookie: linkCookie.get(request),
        meta: request.meta,
      });
      return renderPage(request, reply, "message", {
        title: "Check your email",
        heading: "Check your email",
        paragraphs: [
          { key: "We sent a link to {email}. Open it in this browser to link your sign-in.", params: { email } },
        ],
      });
    }
    const current = await request.currentSession();
    const { outcome, continuation } = await confirmEmailLink(app.ctx, {
      token,
      pendingCookie: linkCookie.get(request),
      meta: request.meta,
      existing: current?.session ?? null,
    });
    linkCookie.clear(reply);
    if (outcome.kind === "second_factor") {
      setMfaCookie(reply, config, outcome.secondFactor.token, outcome.secondFactor.expiresAt);
      return seeOther(reply, withContinuation("/login/otp", continuation));
    }
    setSessionCookie(reply, config, outcome.signedIn.token, outcome.signedIn.session.expiresAt);
    return seeOther(reply, destination(continuation));
  });
}
