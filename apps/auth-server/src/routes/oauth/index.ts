import type { FastifyInstance } from "fastify";
import { OAuthError, OAuthPageError } from "../../errors/index.ts";
import { credentialedCors } from "../../http/cors.ts";
import { csrfPlugin } from "../../http/csrf.ts";
import { sendOAuthError } from "../../http/errors.ts";
import { AuthorizeRedirectError } from "../../libraries/oauth/authorize-request.ts";
import { consentRoutes } from "../pages/consent.ts";
import { authorizeRoutes } from "./authorize.ts";
import { directSignInRoutes } from "./direct.ts";
import { logoutRoutes } from "./logout.ts";
import { tokenRoutes } from "./token.ts";
import { userinfoRoutes } from "./userinfo.ts";

/**
 * The OpenID Provider's protocol endpoints: /authorize, /token, /userinfo, /revoke, /introspect, /logout and the
 * server-to-server sign-in. Errors of these routes are answered in the protocol's own terms: OAuth JSON, a redirect
 * to a verified client URI, or the error page; anything else falls through to the app's error handler (which renders
 * the route's `errorFormat`, and an OAuthPageError always as the one HTML error page).
 */
export async function oauthRoutes(app: FastifyInstance): Promise<void> {
  // The consent and logout forms use the hosted pages' CSRF protection; registered here only if the app has not yet.
  if (!app.hasDecorator("csrfProtection")) await app.register(csrfPlugin);
  app.setErrorHandler(async (error, request, reply) => {
    if (error instanceof OAuthPageError) throw error;
    if (error instanceof OAuthError) return sendOAuthError(reply, error);
    if (error instanceof AuthorizeRedirectError) {
      return reply.redirect(error.location, request.method === "GET" ? 302 : 303);
    }
    throw error;
  });
  // SPAs: CORS for registered web origins on the endpoints a browser client calls; never on /authorize (a navigation).
  credentialedCors(app, { "/token": ["POST"], "/userinfo": ["GET", "POST"], "/revoke": ["POST"] });
  await app.register(authorizeRoutes);
  await app.register(consentRoutes);
  await app.register(tokenRoutes);
  await app.register(userinfoRoutes);
  await app.register(logoutRoutes);
  await app.register(directSignInRoutes);
}
