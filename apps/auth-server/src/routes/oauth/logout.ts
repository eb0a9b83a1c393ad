import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { OAuthPageError } from "../../errors/index.ts";
import { clearSessionCookie } from "../../http/session.ts";
import { type LogoutRequest, logout, validateLogoutRequest } from "../../libraries/oauth/logout.ts";
import { methodNotAllowed } from "./http.ts";
import { sendLogoutConfirmation, sendSignedOutPage } from "./pages.ts";

/**
 * RP-Initiated Logout 1.0, GET and POST /logout. A valid id_token_hint is the proof that an app the user signed in to
 * sent them here, so the session ends at once. Without one, a GET only shows a confirmation form (nothing changes
 * state on GET, SECURITY.md) and the form's POST must carry the CSRF token.
 */
export async function logoutRoutes(app: FastifyInstance): Promise<void> {
  const { ctx } = app;

  const finish = async (request: FastifyRequest, reply: FastifyReply, logoutRequest: LogoutRequest) => {
    const current = await request.currentSession();
    const { location, browserSignedOut } = await logout(ctx, logoutRequest, current?.session ?? null, request.meta);
    if (browserSignedOut) clearSessionCookie(reply, ctx.config);
    if (location) return reply.redirect(location, request.method === "GET" ? 302 : 303);
    return sendSignedOutPage(reply);
  };

  app.get("/logout", { config: { errorFormat: "html" } }, async (request, reply) => {
    const logoutRequest = await validateLogoutRequest(ctx, request.query);
    if (logoutRequest.hint) return finish(request, reply, logoutRequest);
    // Carry the (validated) request into the form so the POST can finish it.
    const params: [string, string][] = [];
    if (logoutRequest.client) params.push(["client_id", logoutRequest.client.clientId]);
    if (logoutRequest.postLogoutRedirectUri)
      params.push(["post_logout_redirect_uri", logoutRequest.postLogoutRedirectUri]);
    if (logoutRequest.state) params.push(["state", logoutRequest.state]);
    return sendLogoutConfirmation(reply, logoutRequest.client, params);
  });

  // Also the target of the hosted account page's sign-out button (a CSRF-protected form post).
  app.post("/logout", { config: { errorFormat: "html" } }, async (request, reply) => {
    if (!/^application\/x-www-form-urlencoded\b/i.test(request.headers["content-type"] ?? "")) {
      throw new OAuthPageError("invalid_request", "Send the logout request as a form.");
    }
    const body = request.body as Record<string, unknown> | undefined;
    const hasHint = typeof body?.id_token_hint === "string" && body.id_token_hint !== "";
    // With a hint the signed token is the proof (an RP may POST the logout request); without one, the CSRF token is.
    if (!hasHint) {
      await new Promise<void>((resolve, reject) => {
        app.csrfProtection.call(app, request, reply, (error?: Error) => (error ? reject(error) : resolve()));
      });
    }
    return finish(request, reply, await validateLogoutRequest(ctx, request.body));
  });
  methodNotAllowed(app, "/logout", ["GET", "HEAD", "POST"]);
}
