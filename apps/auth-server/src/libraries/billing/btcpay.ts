import { createHmac, timingSafeEqual } from "node:crypto";
import type { BillingConfig } from "../../config/billing.ts";
import { AppError } from "../../errors/index.ts";
import type { PaymentProvider, ProviderPurchase, PurchaseRef, VerifiedEvent } from "./provider.ts";

type BtcpaySettings = NonNullable<BillingConfig["btcpay"]>;
type Obj = Record<string, unknown>;

const obj = (value: unknown): Obj => (value && typeof value === "object" ? (value as Obj) : {});
const str = (value: unknown): string | undefined => (typeof value === "string" && value ? value : undefined);

/** Invoice ids are opaque; bound them so nothing odd reaches a URL path. */
const INVOICE_ID = /^[A-Za-z0-9_-]{1,100}$/;
const INVOICE_EVENTS = new Set([
  "InvoiceSettled",
  "InvoiceExpired",
  "InvoiceInvalid",
  "InvoiceProcessing",
  "InvoicePaymentSettled",
]);

/** BTCPay Server's Greenfield API over fetch: invoices for a plan's fixed crypto price, signed webhooks. */
export function createBtcpayProvider(settings: BtcpaySettings): PaymentProvider {
  const storePath = `${settings.url}/api/v1/stores/${encodeURIComponent(settings.storeId)}`;

  async function request(method: "GET" | "POST", path: string, body?: unknown): Promise<Obj> {
    let response: Response;
    try {
      response = await fetch(`${storePath}${path}`, {
        method,
        headers: {
          authorization: `token ${settings.apiKey}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(4_000), // inside the request deadline, as for Stripe
      });
    } catch {
      throw new AppError("PAYMENT_PROVIDER_ERROR");
    }
    if (!response.ok) throw new AppError("PAYMENT_PROVIDER_ERROR");
    try {
      return obj(await response.json());
    } catch {
      throw new AppError("PAYMENT_PROVIDER_ERROR");
    }
  }

  return {
    name: "btcpay",
    sells: (plan) => Boolean(plan.cryptoPrice && plan.cryptoCurrency),
    createCustomer: async () => undefined,

    async createCheckout({ plan, user, successUrl }) {
      // Amount and currency come from the plan on record, never from the browser. Only ids go into the metadata:
      // BTCPay's docs advise against sending personal data to the payment server.
      const invoice = await request("POST", "/invoices", {
        amount: plan.cryptoPrice,
        currency: plan.cryptoCurrency,
        metadata: { orderId: `tessera-${plan.name}`, tessera_user_id: user.id, tessera_plan_id: plan.id },
        checkout: { redirectURL: successUrl, redirectAutomatically: true },
      });
      const link = str(invoice.checkoutLink);
      if (!link || !/^https?:\/\//.test(link)) throw new AppError("PAYMENT_PROVIDER_ERROR");
      return link;
    },

    portalUrl: async () => undefined,
    detachCustomer: async () => undefined,

    verifyWebhook(rawBody, headers): VerifiedEvent {
      const header = headers["btcpay-sig"];
      const expected = `sha256=${createHmac("sha256", settings.webhookSecret).update(rawBody).digest("hex")}`;
      if (
        typeof header !== "string" ||
        header.length !== expected.length ||
        !timingSafeEqual(Buffer.from(header), Buffer.from(expected))
      ) {
        throw new AppError("WEBHOOK_SIGNATURE_INVALID");
      }
      let body: Obj;
      try {
        body = obj(JSON.parse(rawBody.toString("utf8")));
      } catch {
        throw new AppError("MALFORMED_BODY");
      }
      // A redelivery has its own deliveryId and names the original: record the original, so it counts once.
      const id = str(body.originalDeliveryId) ?? str(body.deliveryId);
      const type = str(body.type);
      if (!id || !type || id.length > 200) throw new AppError("VALIDATION_FAILED", "Not a BTCPay webhook delivery.");
      const invoiceId = str(body.invoiceId);
      const refs: PurchaseRef[] =
        INVOICE_EVENTS.has(type) && invoiceId && INVOICE_ID.test(invoiceId) ? [{ kind: "invoice", id: invoiceId }] : [];
      return { id, type, refs };
    },

    async currentState(ref): Promise<ProviderPurchase | null> {
      if (ref.kind !== "invoice") return null;
      const invoice = await request("GET", `/invoices/${encodeURIComponent(ref.id)}`);
      const metadata = obj(invoice.metadata);
      const userId = str(metadata.tessera_user_id);
      const planId = str(metadata.tessera_plan_id);
      if (!userId || !planId) return null;
      const status = str(invoice.status) ?? "unknown";
      return {
        provider: "btcpay",
        providerRef: ref.id,
        userId,
        planId,
        kind: "one_time",
        status,
        // Settled is paid and confirmed; Expired and Invalid grant nothing; New and Processing wait.
        phase: status === "Settled" ? "active" : status === "Expired" || status === "Invalid" ? "ended" : "pending",
        currentPeriodEnd: null,
        cancelAtPeriodEnd: false,
        refunded: false,
        receiptUrl: str(invoice.checkoutLink) ? `${str(invoice.checkoutLink)}/receipt` : null,
        charged: { amount: String(invoice.amount ?? ""), currency: str(invoice.currency) ?? "" },
      };
    },
  };
}
