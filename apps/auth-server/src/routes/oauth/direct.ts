import type { FastifyInstance } from "fastify";
import { noStore } from "../../http/errors.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { authenticateOAuthClient } from "../../libraries/oauth/client-auth.ts";
import { directSignIn } from "../../libraries/oauth/direct.ts";
import { DIRECT_SIGN_IN_PARAMS } from "../../libraries/oauth/form-params.ts";
import { readParams } from "../../libraries/oauth/params.ts";
import { clientCredentials, failureLog, methodNotAllowed, requireForm } from "./http.ts";

/**
 * POST /api/v1/clients/sessions: server-to-server sign-in for trusted first-party clients. Form body with the
 * client's credentials (Basic or client_secret_post) and the user's `username` (email) and `password` (and, after a
 * TERMS_ACCEPTANCE_REQUIRED answer, `accept_terms_version` / `accept_privacy_version`); answers the /token response. Rate-limited with the hosted sign-in form's limit.
 */
export async function directSignInRoutes(app: FastifyInstance): Promise<void> {
  const { ctx } = app;
  app.post(
    "/api/v1/clients/sessions",
    { config: { errorFormat: "oauth", rateLimit: routeRateLimit(ctx.config, "login") } },
    async (request, reply) => {
      requireForm(request);
      const p = readParams(request.body, DIRECT_SIGN_IN_PARAMS);
      const client = await authenticateOAuthClient(
        ctx,
        clientCredentials(request, request.body),
        request.meta,
        failureLog(request),
      );
      const response = await directSignIn(
        ctx,
        client,
        { ...p, acceptTermsVersion: p.accept_terms_version, acceptPrivacyVersion: p.accept_privacy_version },
        request.meta,
      );
      return noStore(reply).send(response);
    },
  );
  methodNotAllowed(app, "/api/v1/clients/sessions", ["POST"]);
}
