import type { FastifyInstance } from "fastify";
import { OAuthPageError } from "../../errors/index.ts";
import { recordTermsAcceptance } from "../../libraries/accounts/terms.ts";
import { accessDenied, decide, termsDeclined } from "../../libraries/oauth/authorize.ts";
import { validateAuthorizationRequest } from "../../libraries/oauth/authorize-request.ts";
import { readParams } from "../../libraries/oauth/params.ts";
import { sendDecision } from "../oauth/authorize.ts";
import { sendTermsDeclinedPage } from "../oauth/pages.ts";

/**
 * The consent form's target. The form carries the whole authorization request, so it is validated again from
 * scratch (client, redirect URI, PKCE, ...), and the CSRF token proves the user clicked on Tessera's own page.
 * Approving continues exactly like /authorize and remembers the approval (libraries/oauth/consent.ts); denying
 * returns access_denied to the client.
 */
export async function consentRoutes(app: FastifyInstance): Promise<void> {
  app.post(
    "/authorize/consent",
    { config: { errorFormat: "html" }, preHandler: app.csrfProtection },
    async (request, reply) => {
      const { decision } = readParams(request.body, { decision: 16 }, (d) => new OAuthPageError("invalid_request", d));
      if (decision !== "approve" && decision !== "deny") {
        throw new OAuthPageError("invalid_request", "Choose Allow or Deny.");
      }
      const authorization = await validateAuthorizationRequest(app.ctx, request.body);
      if (decision === "deny") return reply.redirect(accessDenied(app.ctx, authorization), 303);
      const result = await decide(app.ctx, authorization, await request.currentSession(), { consented: true });
      return sendDecision(request, reply, result);
    },
  );

  // The terms interstitial's target (#16), like the consent form: the whole request again, CSRF-checked. Accepting
  // records the configured versions (context sign_in) and continues like /authorize; declining issues no code and
  // says so, with a link that tells the app access_denied.
  app.post(
    "/authorize/terms",
    { config: { errorFormat: "html" }, preHandler: app.csrfProtection },
    async (request, reply) => {
      const { decision } = readParams(request.body, { decision: 16 }, (d) => new OAuthPageError("invalid_request", d));
      if (decision !== "accept" && decision !== "decline") {
        throw new OAuthPageError("invalid_request", "Choose Accept or Decline.");
      }
      const authorization = await validateAuthorizationRequest(app.ctx, request.body);
      const current = await request.currentSession();
      if (decision === "decline" || !current) {
        if (decision === "accept") return sendDecision(request, reply, await decide(app.ctx, authorization, null));
        return sendTermsDeclinedPage(reply, authorization.client, termsDeclined(app.ctx, authorization));
      }
      await recordTermsAcceptance(app.ctx.db, app.ctx.config, {
        userId: current.user.id,
        context: "sign_in",
        now: app.ctx.clock.now(),
      });
      const result = await decide(app.ctx, authorization, current, { termsAccepted: true });
      return sendDecision(request, reply, result);
    },
  );
}
