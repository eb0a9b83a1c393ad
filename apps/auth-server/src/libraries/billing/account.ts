import type { Executor } from "@tessera/db";
import type { CoreContext, Logger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { deleteCustomers, findCustomer, purchasesOfUser } from "../../queries/billing.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { billingEnabled, paymentProviders } from "./index.ts";

/** Provider statuses in words of the message catalog (the page translates them); others are shown as the provider says. */
const STATUS_WORDS: Record<string, string> = {
  active: "active",
  trialing: "active",
  past_due: "payment overdue",
  unpaid: "payment overdue",
  canceled: "canceled",
  Settled: "paid",
  settled: "paid",
};

const day = (date: Date | null) => (date ? `${date.toISOString().slice(0, 10)}` : null);

/** What /account/billing shows: each purchase with its status and renewal or end date, and receipt links. */
export async function billingOverview(ctx: CoreContext, userId: string) {
  const enabled = billingEnabled(ctx.config);
  if (!enabled) return { enabled, purchases: [], portal: false };
  const rows = await purchasesOfUser(ctx.db, userId);
  const portal = paymentProviders(ctx.config).has("stripe") && Boolean(await findCustomer(ctx.db, userId, "stripe"));
  return {
    enabled,
    portal,
    purchases: rows.map((p) => ({
      plan: p.planName,
      provider: p.provider === "stripe" ? "Card (Stripe)" : "Crypto (BTCPay)",
      kind: p.kind === "subscription" ? "Subscription" : "One-time",
      status: p.refundedAt ? "refunded" : (STATUS_WORDS[p.status] ?? p.status),
      renews:
        p.kind === "subscription" && !p.cancelAtPeriodEnd && p.status === "active" ? day(p.currentPeriodEnd) : null,
      ends: p.kind === "subscription" && p.cancelAtPeriodEnd ? day(p.currentPeriodEnd) : null,
      receiptUrl: p.receiptUrl && /^https?:\/\//.test(p.receiptUrl) ? p.receiptUrl : null,
    })),
  };
}

/** A link to Stripe's customer portal (cancel, change card) for the user's Stripe customer. */
export async function customerPortalUrl(ctx: CoreContext, userId: string): Promise<string> {
  const stripe = paymentProviders(ctx.config).get("stripe");
  if (!stripe) throw new AppError("BILLING_DISABLED");
  const customerId = await findCustomer(ctx.db, userId, "stripe");
  if (!customerId) throw new AppError("NO_BILLING_ACCOUNT");
  const url = await stripe.portalUrl(customerId, `${ctx.config.issuer}/account/billing`);
  if (!url) throw new AppError("PAYMENT_PROVIDER_ERROR");
  return url;
}

/**
 * Account deletion, step one (inside the deletion's transaction): forget the user's provider customers. Returns
 * them, so step two (`detachAtProviders`, after commit) can unlink them at the provider.
 */
export function forgetCustomers(tx: Executor, userId: string) {
  return deleteCustomers(tx, userId);
}

/**
 * Account deletion, step two: the provider's customer no longer names the person (Stripe: email and
 * `tessera_user_id` cleared). Best effort after the deletion committed; a failure is audited and logged, and never
 * undoes the deletion.
 */
export async function detachAtProviders(
  ctx: CoreContext,
  log: Logger,
  input: { userId: string; customers: { provider: "stripe" | "btcpay"; customerId: string }[]; meta: RequestMeta },
): Promise<void> {
  for (const { provider, customerId } of input.customers) {
    const payments = paymentProviders(ctx.config).get(provider);
    let ok = false;
    try {
      if (payments) {
        await payments.detachCustomer(customerId);
        ok = true;
      }
    } catch {
      log.warn({ provider }, "could not detach the deleted user's customer at the payment provider");
    }
    await audit(ctx.db, input.meta, {
      event: "billing.customer_detached",
      outcome: ok ? "success" : "failure",
      userId: input.userId,
      details: { provider, customer_id: customerId },
    });
  }
}
