import type { FastifyInstance } from "fastify";
import { requireSession } from "../../http/session.ts";
import { billingOverview, customerPortalUrl } from "../../libraries/billing/account.ts";
import { startCheckout } from "../../libraries/billing/checkout.ts";
import { billingEnabled } from "../../libraries/billing/index.ts";
import { renderPage, seeOther, str } from "../pages/render.ts";

const html = { errorFormat: "html" as const };

/**
 * The user's side of payments: `/billing/checkout` (redirects to the provider's hosted checkout), `/billing/return`
 * (where the provider sends the browser back: it only says "processing", the signed webhook grants), and
 * `/account/billing` with the button to Stripe's customer portal.
 */
export async function billingPages(app: FastifyInstance): Promise<void> {
  const disabledPage = (request: Parameters<typeof renderPage>[0], reply: Parameters<typeof renderPage>[1]) =>
    renderPage(
      request,
      reply,
      "message",
      {
        title: "Payments are off",
        heading: "Payments are off",
        paragraphs: ["This Tessera server does not sell anything: no payment provider is set up."],
        action: { href: "/account", label: "Go to your account" },
      },
      501,
    );

  app.get("/billing/checkout", { config: html }, async (request, reply) => {
    if (!billingEnabled(app.ctx.config)) return disabledPage(request, reply);
    const current = await requireSession(request, reply, request.url);
    if (!current) return reply;
    const url = await startCheckout(app.ctx, {
      user: { id: current.user.id, email: current.user.email },
      query: request.query,
    });
    return seeOther(reply, url);
  });

  app.get("/billing/return", { config: html }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const canceled = str(query.status, 20) === "canceled";
    const returnTo = str(query.return_to, 2000);
    // Only a URL checkout itself validated comes back here, but a link is still only offered when it is http(s).
    const back = returnTo && /^https?:\/\//i.test(returnTo) ? returnTo : "/account/billing";
    return renderPage(request, reply, "message", {
      title: canceled ? "Payment canceled" : "Payment processing",
      heading: canceled ? "Payment canceled" : "Your payment is being processed",
      paragraphs: canceled
        ? ["Nothing was charged."]
        : [
            "Thank you. As soon as the payment provider confirms the payment, your purchase unlocks in every app.",
            "This usually takes a few seconds; apps see it at their next refresh.",
          ],
      action: { href: back, label: "Continue" },
    });
  });

  app.get("/account/billing", { config: html }, async (request, reply) => {
    const current = await requireSession(request, reply, "/account/billing");
    if (!current) return reply;
    const overview = await billingOverview(app.ctx, current.user.id);
    return renderPage(request, reply, "billing", { title: "Billing", wide: true, ...overview });
  });

  app.post("/account/billing/portal", { config: html, preHandler: app.csrfProtection }, async (request, reply) => {
    const current = await requireSession(request, reply, "/account/billing");
    if (!current) return reply;
    return seeOther(reply, await customerPortalUrl(app.ctx, current.user.id));
  });
}
