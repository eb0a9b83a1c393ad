import type { FastifyReply } from "fastify";
import { csrfToken } from "../../http/csrf.ts";
import type { ClientRow } from "../../libraries/clients/index.ts";
import type { AuthorizationRequest } from "../../libraries/oauth/authorize-request.ts";
import type { UserRow } from "../../libraries/sessions.ts";
import { renderView } from "../../views/index.ts";

/** The product name shown in the layout: the configured sender name (MAIL_FROM_NAME), as on the hosted pages. */
const productOf = (reply: FastifyReply): string => reply.server.ctx.config.mail.fromName;

const SCOPE_LABELS: Record<string, string> = {
  openid: "Know who you are (your account id)",
  profile: "Your name",
  email: "Your email address",
  offline_access: "Stay signed in while you are away",
  roles: "Your roles in this app and what you own",
};

function branding(client: ClientRow | undefined) {
  return client ? { clientId: client.clientId, name: client.name, logoUrl: client.logoUrl } : undefined;
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type("text/html; charset=utf-8").header("cache-control", "no-store").send(body);
}

/** The consent page for a third-party application; approving or denying posts to /authorize/consent. */
export function sendConsentPage(reply: FastifyReply, request: AuthorizationRequest, user: UserRow) {
  return html(
    reply,
    200,
    renderView("pages/consent", {
      title: `Allow ${request.client.name}?`,
      product: productOf(reply),
      branding: branding(request.client),
      clientName: request.client.name,
      email: user.email,
      scopes: request.scopes.map((s) => SCOPE_LABELS[s] ?? s),
      params: Object.entries(request.params),
      csrf: csrfToken(reply),
    }),
  );
}

/** GET /logout without proof of the app (no valid id_token_hint): ask before signing out (nothing changes on GET). */
export function sendLogoutConfirmation(reply: FastifyReply, client: ClientRow | undefined, params: [string, string][]) {
  return html(
    reply,
    200,
    renderView("pages/logout", {
      title: "Sign out",
      product: productOf(reply),
      branding: branding(client),
      params,
      csrf: csrfToken(reply),
    }),
  );
}

export function sendSignedOutPage(reply: FastifyReply) {
  return html(
    reply,
    200,
    renderView("pages/message", {
      title: "Signed out",
      product: productOf(reply),
      heading: "You are signed out",
      paragraphs: [
        `You have been signed out of ${productOf(reply)} and of the applications you used with it on this device.`,
      ],
      action: { href: "/login", label: "Sign in again" },
    }),
  );
}
