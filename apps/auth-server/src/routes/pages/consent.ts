import type { FastifyInstance } from "fastify";
import { OAuthPageError } from "../../errors/index.ts";
import { accessDenied, decide } from "../../libraries/oauth/authorize.ts";
import { validateAuthorizationRequest } from "../../libraries/oauth/authorize-request.ts";
import { readParams } from "../../libraries/oauth/params.ts";
import { sendDecision } from "../oauth/authorize.ts";

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
}
