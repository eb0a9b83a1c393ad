import type { FastifyReply } from "fastify";
import type { ClientRow } from "../../libraries/clients/index.ts";
import type { AuthorizationRequest } from "../../libraries/oauth/authorize-request.ts";
import type { UserRow } from "../../libraries/sessions.ts";
import { renderPage } from "../pages/render.ts";

/** The product name shown in the layout: the configured sender name (MAIL_FROM_NAME), as on the hosted pages. */
const productOf = (reply: FastifyReply): string => reply.server.ctx.config.mail.fromName;

const SCOPE_LABELS: Record<string, string> = {
  openid: "Know who you are (your account id)",
  profile: "Your name",
  email: "Your email address",
  offline_access: "Stay signed in while you are away",
  roles: "Your roles in this app and what you own",
};

/** The consent page for a third-party application; approving or denying posts to /authorize/consent. */
export function sendConsentPage(reply: FastifyReply, request: AuthorizationRequest, user: UserRow) {
  return renderPage(reply.request, reply, "consent", {
    title: { key: "Allow {app}?", params: { app: request.client.name } },
    continuation: { clientId: request.client.clientId },
    clientName: request.client.name,
    email: user.email,
    scopes: request.scopes.map((s) => SCOPE_LABELS[s] ?? s),
    params: Object.entries(request.params),
  });
}

/** The terms interstitial (#16): a newer terms or privacy version to accept before continuing to the app. */
export function sendTermsPage(reply: FastifyReply, request: AuthorizationRequest, user: UserRow) {
  return renderPage(reply.request, reply, "terms-accept", {
    title: "Updated terms",
    continuation: { clientId: request.client.clientId },
    clientName: request.client.name,
    email: user.email,
    documents: reply.server.ctx.config.privacy,
    params: Object.entries(request.params),
  });
}

/** After declining the updated terms: not signed in to the app; the link tells the app (access_denied). */
export function sendTermsDeclinedPage(reply: FastifyReply, client: ClientRow, appLocation: string) {
  return renderPage(reply.request, reply, "message", {
    title: "Terms declined",
    continuation: { clientId: client.clientId },
    heading: { key: "You are not signed in to {app}", params: { app: client.name } },
    paragraphs: [
      {
        key: "You declined the updated terms, so {product} did not sign you in to {app}.",
        params: { product: productOf(reply), app: client.name },
      },
      "You can accept them the next time you sign in.",
    ],
    action: { href: appLocation, label: { key: "Return to {app}", params: { app: client.name } } },
  });
}

/** GET /logout without proof of the app (no valid id_token_hint): ask before signing out (nothing changes on GET). */
export function sendLogoutConfirmation(reply: FastifyReply, client: ClientRow | undefined, params: [string, string][]) {
  return renderPage(reply.request, reply, "logout", {
    title: "Sign out",
    continuation: client ? { clientId: client.clientId } : {},
    params,
  });
}

export function sendSignedOutPage(reply: FastifyReply) {
  return renderPage(reply.request, reply, "message", {
    title: "Signed out",
    heading: "You are signed out",
    paragraphs: [
      {
        key: "You have been signed out of {product} and of the applications you used with it on this device.",
        params: { product: productOf(reply) },
      },
    ],
    action: { href: "/login", label: "Sign in again" },
  });
}
