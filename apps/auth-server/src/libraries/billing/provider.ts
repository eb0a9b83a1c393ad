import type { PlanRow } from "../../queries/plans.ts";

export type ProviderName = "stripe" | "btcpay";

/** One object at a provider whose current state decides a purchase's grants. */
export interface PurchaseRef {
  kind: "subscription" | "payment" | "invoice";
  id: string;
}

/** A verified webhook delivery: its id (recorded once), its type, and the provider objects it concerns. */
export interface VerifiedEvent {
  id: string;
  type: string;
  refs: PurchaseRef[];
}

/**
 * A purchase as the provider sees it now (read from the provider's API, never from the webhook body), reduced to
 * what decides grants. `phase`: `active` (paid, or subscription active/trialing), `past_due` (a renewal payment
 * failed; the grace period runs), `pending` (not paid yet), `ended` (canceled, expired, refunded, invalid).
 */
export interface ProviderPurchase {
  provider: ProviderName;
  providerRef: string;
  /** From the metadata Tessera set when it created the checkout; the provider signs nothing else we trust. */
  userId: string;
  planId: string;
  kind: "subscription" | "one_time";
  status: string;
  phase: "active" | "past_due" | "pending" | "ended";
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  refunded: boolean;
  receiptUrl: string | null;
  /** What was charged, to compare with the plan Tessera has on record (a mismatch grants nothing). */
  charged: { stripePriceId: string } | { amount: string; currency: string } | null;
}

export interface CheckoutInput {
  plan: PlanRow;
  user: { id: string; email: string };
  /** The provider's customer, for providers that keep one (Stripe). */
  customerId: string | undefined;
  successUrl: string;
  cancelUrl: string;
}

/** A payment provider behind a small interface, so another can be added beside Stripe and BTCPay. */
export interface PaymentProvider {
  readonly name: ProviderName;
  /** Whether this plan has a price this provider can charge. */
  sells(plan: PlanRow): boolean;
  /** Stripe only: whether a price is recurring (a subscription plan) or one-time; null when there is no such price. */
  priceKind?(priceId: string): Promise<"subscription" | "one_time" | null>;
  /** Creates the provider's customer for a user (providers without customers return undefined). */
  createCustomer(user: { id: string; email: string }): Promise<string | undefined>;
  /** Creates a hosted checkout and returns the URL to send the browser to. */
  createCheckout(input: CheckoutInput): Promise<string>;
  /** A link to the provider's self-service page (cancel, change card), when it has one. */
  portalUrl(customerId: string, returnUrl: string): Promise<string | undefined>;
  /** Unlinks a provider customer from the (deleted) Tessera user. */
  detachCustomer(customerId: string): Promise<void>;
  /** Checks the signature on the raw body; throws WEBHOOK_SIGNATURE_INVALID. */
  verifyWebhook(
    rawBody: Buffer,
    headers: Record<string, string | string[] | undefined>,
    now: Date,
  ): VerifiedEvent | Promise<VerifiedEvent>;
  /** The provider's current state of an object; null when it is not a Tessera purchase. */
  currentState(ref: PurchaseRef): Promise<ProviderPurchase | null>;
}
