import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { OAuthPageError } from "../../errors/index.ts";
import { type AuthorizeDecision, decide } from "../../libraries/oauth/authorize.ts";
import { validateAuthorizationRequest } from "../../libraries/oauth/authorize-request.ts";
import { methodNotAllowed } from "./http.ts";
import { sendConsentPage, sendTermsPage } from "./pages.ts";

/** Answers a decision: a redirect (code, error or sign-in page) or the consent page. 303 after a POST. */
export function sendDecision(request: FastifyRequest, reply: FastifyReply, decision: AuthorizeDecision) {
  if (decision.kind === "consent") return sendConsentPage(reply, decision.request, decision.user);
  if (decision.kind === "terms") return sendTermsPage(reply, decision.request, decision.user);
  return reply.redirect(decision.location, request.method === "GET" ? 302 : 303);
}

/**
 * GET and POST /authorize (OIDC Core 3.1.2.1: both must be supported; POST carries the same parameters as a form).
 * No CORS: this is a top-level navigation, never a cross-origin fetch.
 */
export async function authorizeRoutes(app: FastifyInstance): Promise<void> {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    let input: unknown = request.query;
    if (request.method === "POST") {
      if (!/^application\/x-www-form-urlencoded\b/i.test(request.headers["content-type"] ?? "")) {
        throw new OAuthPageError("invalid_request", "Send the authorization request as a form.");
      }
      input = request.body;
    }
    const authorization = await validateAuthorizationRequest(app.ctx, input);
    const decision = await decide(app.ctx, authorization, await request.currentSession());
    return sendDecision(request, reply, decision);
  };
  app.get("/authorize", { config: { errorFormat: "html" } }, handler);
  app.post("/authorize", { config: { errorFormat: "html" } }, handler);
  methodNotAllowed(app, "/authorize", ["GET", "HEAD", "POST"]);
}
