import { z } from "zod";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { findCustomer, insertCustomer } from "../../queries/billing.ts";
import { isRegisteredOrigin } from "../../queries/plans.ts";
import { parse } from "../../validation.ts";
import { paymentProviders } from "./index.ts";
import { getPlan, planNameSchema } from "./plans.ts";
import type { PaymentProvider } from "./provider.ts";

const checkoutQuery = z.object({
  plan: planNameSchema,
  return_to: z.string().min(1).max(2000),
  /** `card` (Stripe, the default when the plan has a Stripe price) or `crypto` (BTCPay). */
  method: z.enum(["card", "crypto"]).optional(),
});

/**
 * Where checkout may send the browser back to: an absolute http(s) URL on the origin of an enabled client's
 * registered redirect or post-logout URI (so Tessera is never an open redirector). Returns the normalised URL.
 */
export async function registeredReturnTo(ctx: CoreContext, raw: unknown): Promise<string> {
  if (typeof raw !== "string" || raw.length > 2000) throw new AppError("RETURN_TO_NOT_REGISTERED");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError("RETURN_TO_NOT_REGISTERED");
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.username || url.password) {
    throw new AppError("RETURN_TO_NOT_REGISTERED");
  }
  if (!(await isRegisteredOrigin(ctx.db, url.origin))) throw new AppError("RETURN_TO_NOT_REGISTERED");
  url.hash = "";
  return url.toString();
}

/**
 * Starts a purchase for a signed-in user: the plan and its price come from Tessera's records (the browser only
 * names the plan), the provider's customer is created once and reused, and the provider's hosted checkout carries
 * the user and plan ids in its metadata. Returns the URL to redirect to. Nothing is granted here: only signed
 * webhooks change what a user owns.
 */
export async function startCheckout(
  ctx: CoreContext,
  input: { user: { id: string; email: string }; query: unknown },
): Promise<string> {
  const providers = paymentProviders(ctx.config);
  if (providers.size === 0) throw new AppError("BILLING_DISABLED");
  const query = parse(checkoutQuery, input.query);
  const returnTo = await registeredReturnTo(ctx, query.return_to);
  const plan = await getPlan(ctx, query.plan);
  if (plan.archivedAt) throw new AppError("PLAN_ARCHIVED");

  const wanted = query.method ?? (plan.stripePriceId ? "card" : "crypto");
  const payments: PaymentProvider | undefined = providers.get(wanted === "card" ? "stripe" : "btcpay");
  if (!payments?.sells(plan)) throw new AppError("PAYMENT_PROVIDER_UNAVAILABLE");

  let customerId = (await findCustomer(ctx.db, input.user.id, payments.name)) ?? undefined;
  if (!customerId) {
    const created = await payments.createCustomer(input.user);
    if (created) {
      customerId = await insertCustomer(ctx.db, {
        userId: input.user.id,
        provider: payments.name,
        customerId: created,
        createdAt: ctx.clock.now(),
      });
    }
  }
  const back = (status: string) =>
    `${ctx.config.issuer}/billing/return?${new URLSearchParams({ status, return_to: returnTo })}`;
  return payments.createCheckout({
    plan,
    user: input.user,
    customerId,
    successUrl: back("processing"),
    cancelUrl: back("canceled"),
  });
}
