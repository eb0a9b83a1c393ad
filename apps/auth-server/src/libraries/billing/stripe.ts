import type Stripe from "stripe";
import type { BillingConfig } from "../../config/billing.ts";
import { AppError } from "../../errors/index.ts";
import type { PlanRow } from "../../queries/plans.ts";
import type { PaymentProvider, ProviderPurchase, PurchaseRef, VerifiedEvent } from "./provider.ts";

type StripeSettings = NonNullable<BillingConfig["stripe"]>;
type Obj = Record<string, unknown>;

const obj = (value: unknown): Obj => (value && typeof value === "object" ? (value as Obj) : {});
const str = (value: unknown): string | undefined => (typeof value === "string" && value ? value : undefined);
/** An id, whether Stripe sent the bare id or the expanded object. */
const idOf = (value: unknown): string | undefined => str(value) ?? str(obj(value).id);
const date = (seconds: unknown): Date | null => (typeof seconds === "number" ? new Date(seconds * 1000) : null);

/** The official `stripe` package, pointed at STRIPE_API_URL (Stripe's own by default; a local stub in tests). */
export function createStripeProvider(settings: StripeSettings): PaymentProvider {
  const api = new URL(settings.apiUrl);
  // Loaded on first use: the package takes a noticeable share of start-up (and of every test file's import time), and
  // most deployments and tests never call Stripe.
  let loaded: Promise<{ stripe: Stripe; module: typeof Stripe }> | undefined;
  const load = () =>
    (loaded ??= import("stripe").then(({ default: StripeClass }) => ({
      module: StripeClass,
      stripe: new StripeClass(settings.secretKey, {
        host: api.hostname,
        port: api.port || (api.protocol === "https:" ? 443 : 80),
        protocol: api.protocol === "http:" ? "http" : "https",
        // Within the request deadline (REQUEST_DEADLINE_MS, 5 s by default): a slow Stripe fails the request with 502
        // and is retried by whoever asked (the user; Stripe's own webhook retries), not by the package behind it.
        maxNetworkRetries: 0,
        timeout: 4_000,
        telemetry: false,
      }),
    })));

  /** Any failure talking to Stripe is a 502 with a code; Stripe's message (which may quote ids) stays in the log. */
  async function call<T>(what: () => Promise<T>): Promise<T> {
    try {
      return await what();
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError("PAYMENT_PROVIDER_ERROR", undefined, undefined, undefined, undefined);
    }
  }

  const metadataOf = (value: unknown) => {
    const metadata = obj(obj(value).metadata);
    return { userId: str(metadata.tessera_user_id), planId: str(metadata.tessera_plan_id) };
  };

  async function subscriptionState(id: string): Promise<ProviderPurchase | null> {
    const sub = obj(
      await call(async () => (await load()).stripe.subscriptions.retrieve(id, { expand: ["latest_invoice"] })),
    );
    const { userId, planId } = metadataOf(sub);
    if (!userId || !planId) return null;
    const status = str(sub.status) ?? "unknown";
    const item = obj((obj(sub.items).data as unknown[] | undefined)?.[0]);
    return {
      provider: "stripe",
      providerRef: id,
      userId,
      planId,
      kind: "subscription",
      status,
      phase:
        status === "active" || status === "trialing"
          ? "active"
          : status === "past_due"
            ? "past_due"
            : status === "incomplete"
              ? "pending"
              : "ended",
      // Stripe moved the period from the subscription to its items (API 2025-03-31); read either.
      currentPeriodEnd: date(item.current_period_end ?? sub.current_period_end),
      cancelAtPeriodEnd: sub.cancel_at_period_end === true,
      refunded: false,
      receiptUrl: str(obj(sub.latest_invoice).hosted_invoice_url) ?? null,
      charged: idOf(item.price) ? { stripePriceId: idOf(item.price) as string } : null,
    };
  }

  async function paymentState(id: string): Promise<ProviderPurchase | null> {
    const intent = obj(
      await call(async () => (await load()).stripe.paymentIntents.retrieve(id, { expand: ["latest_charge"] })),
    );
    const { userId, planId } = metadataOf(intent);
    if (!userId || !planId) return null;
    const charge = obj(intent.latest_charge);
    const status = str(intent.status) ?? "unknown";
    const refunded = charge.refunded === true;
    return {
      provider: "stripe",
      providerRef: id,
      userId,
      planId,
      kind: "one_time",
      status: refunded ? "refunded" : status,
      phase: refunded ? "ended" : status === "succeeded" ? "active" : status === "canceled" ? "ended" : "pending",
      currentPeriodEnd: null,
      cancelAtPeriodEnd: false,
      refunded,
      receiptUrl: str(charge.receipt_url) ?? null,
      // The price of a one-time payment is on the Checkout Session, not the payment intent; the metadata (set by
      // Tessera, server-side) names the plan.
      charged: null,
    };
  }

  return {
    name: "stripe",
    sells: (plan: PlanRow) => Boolean(plan.stripePriceId),

    async priceKind(priceId) {
      const { stripe, module } = await load();
      try {
        const price = await stripe.prices.retrieve(priceId);
        return price.type === "recurring" ? "subscription" : "one_time";
      } catch (error) {
        if (error instanceof module.errors.StripeInvalidRequestError && error.statusCode === 404) return null;
        throw new AppError("PAYMENT_PROVIDER_ERROR");
      }
    },

    async createCustomer(user) {
      const { stripe } = await load();
      const customer = await call(() =>
        stripe.customers.create(
          { email: user.email, metadata: { tessera_user_id: user.id } },
          { idempotencyKey: `tessera-customer-${user.id}` },
        ),
      );
      return customer.id;
    },

    async createCheckout({ plan, user, customerId, successUrl, cancelUrl }) {
      const metadata = { tessera_user_id: user.id, tessera_plan_id: plan.id };
      const subscription = plan.kind === "subscription";
      const { stripe } = await load();
      const session = await call(() =>
        stripe.checkout.sessions.create({
          mode: subscription ? "subscription" : "payment",
          ...(customerId ? { customer: customerId } : {}),
          client_reference_id: user.id,
          metadata,
          line_items: [{ price: plan.stripePriceId as string, quantity: 1 }],
          success_url: successUrl,
          cancel_url: cancelUrl,
          ...(subscription ? { subscription_data: { metadata } } : { payment_intent_data: { metadata } }),
        }),
      );
      if (!session.url) throw new AppError("PAYMENT_PROVIDER_ERROR");
      return session.url;
    },

    async portalUrl(customerId, returnUrl) {
      const { stripe } = await load();
      const portal = await call(() =>
        stripe.billingPortal.sessions.create({ customer: customerId, return_url: returnUrl }),
      );
      return portal.url;
    },

    async detachCustomer(customerId) {
      // A deleted account is never billed again: its live subscriptions end now (#16), not at the period's end.
      const { stripe } = await load();
      const subscriptions = await call(() =>
        stripe.subscriptions.list({ customer: customerId, status: "all", limit: 100 }),
      );
      for (const sub of subscriptions.data) {
        if (sub.status !== "canceled" && sub.status !== "incomplete_expired") {
          await call(() => stripe.subscriptions.cancel(sub.id));
        }
      }
      // The customer stays at Stripe (its invoices are accounting records); the link to the person is removed.
      await call(() => stripe.customers.update(customerId, { email: "", metadata: { tessera_user_id: "" } }));
    },

    async verifyWebhook(rawBody, headers, now): Promise<VerifiedEvent> {
      const signature = headers["stripe-signature"];
      if (typeof signature !== "string" || signature.length > 2048) throw new AppError("WEBHOOK_SIGNATURE_INVALID");
      const { stripe } = await load();
      let event: Stripe.Event;
      try {
        // The package's own verifier: HMAC-SHA256 of `t.payload`, compared in constant time, `t` within tolerance.
        event = stripe.webhooks.constructEvent(
          rawBody,
          signature,
          settings.webhookSecret,
          settings.webhookToleranceSeconds,
          undefined,
          now.getTime(),
        );
      } catch {
        throw new AppError("WEBHOOK_SIGNATURE_INVALID");
      }
      return { id: event.id, type: event.type, refs: refsOf(event.type, obj(event.data?.object)) };
    },

    async currentState(ref: PurchaseRef) {
      if (ref.kind === "subscription") return subscriptionState(ref.id);
      if (ref.kind === "payment") return paymentState(ref.id);
      return null;
    },
  };
}

/** Which provider objects an event concerns; their current state is then read from Stripe. */
function refsOf(type: string, object: Obj): PurchaseRef[] {
  const one = (kind: PurchaseRef["kind"], id: string | undefined): PurchaseRef[] => (id ? [{ kind, id }] : []);
  switch (type) {
    case "checkout.session.completed":
    case "checkout.session.async_payment_succeeded":
      return object.mode === "subscription"
        ? one("subscription", idOf(object.subscription))
        : one("payment", idOf(object.payment_intent));
    case "customer.subscription.created":
    case "customer.subscription.updated":
    case "customer.subscription.deleted":
      return one("subscription", idOf(object.id));
    case "invoice.paid":
    case "invoice.payment_failed":
      return one(
        "subscription",
        idOf(object.subscription) ?? idOf(obj(obj(object.parent).subscription_details).subscription),
      );
    case "charge.refunded":
      return one("payment", idOf(object.payment_intent));
    default:
      return [];
  }
}
