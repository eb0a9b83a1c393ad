import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";

/**
 * A local stand-in for Stripe's API, for tests only: the official `stripe` package talks to it through
 * STRIPE_API_URL, exactly as it would to api.stripe.com (form-encoded requests, JSON answers). It keeps prices,
 * customers, checkout sessions, subscriptions and payment intents in memory, and it serves a checkout page clearly
 * labelled as a test stub whose "Pay" button completes the session and delivers the signed webhooks Stripe would.
 */
export interface StripeStub {
  url: string;
  webhookSecret: string;
  prices: Map<string, { id: string; type: "recurring" | "one_time" }>;
  customers: Map<string, Record<string, unknown>>;
  sessions: Map<string, Record<string, unknown>>;
  subscriptions: Map<string, Record<string, unknown>>;
  paymentIntents: Map<string, Record<string, unknown>>;
  /** Every API request the stub answered (method and path), to assert what Tessera asked for. */
  requests: { method: string; path: string; body: Record<string, unknown> }[];
  /** The stub's clock in Unix seconds (tests set it to Tessera's test clock); signs events and starts periods. */
  now: () => number;
  /** Where the pay button delivers webhooks (Tessera's /webhooks/stripe). */
  webhookUrl: string | undefined;
  /** Builds an event around an object and returns its JSON body and a valid Stripe-Signature for it. */
  signedEvent(
    type: string,
    object: Record<string, unknown>,
    options?: { id?: string; timestamp?: number },
  ): SignedEvent;
  /** Completes a checkout session as the hosted page's Pay button does; returns the events it produced. */
  complete(sessionId: string, nowSeconds?: number): SignedEvent[];
  close(): Promise<void>;
}

export interface SignedEvent {
  id: string;
  payload: string;
  signature: string;
}

const rid = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`;

/** Stripe's form encoding (`a[b][0][c]=x`) back into an object. */
export function parseStripeForm(body: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const parts = key.replace(/\]/g, "").split("[");
    let node = root as Record<string, unknown>;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) node[part] = value;
      else {
        node[part] ??= {};
        node = node[part] as Record<string, unknown>;
      }
    });
  }
  return root;
}

export async function startStripeStub(options: { webhookSecret?: string } = {}): Promise<StripeStub> {
  const webhookSecret = options.webhookSecret ?? `whsec_${randomBytes(16).toString("hex")}`;
  const stripe = new Stripe("sk_test_stub");
  const stub: Omit<StripeStub, "url" | "close"> = {
    webhookSecret,
    prices: new Map(),
    customers: new Map(),
    sessions: new Map(),
    subscriptions: new Map(),
    paymentIntents: new Map(),
    requests: [],
    webhookUrl: undefined,
    now: () => Math.floor(Date.now() / 1000),
    signedEvent(type, object, opts = {}) {
      const id = opts.id ?? rid("evt");
      const payload = JSON.stringify({ id, object: "event", type, data: { object }, api_version: "2025-01-01" });
      const signature = stripe.webhooks.generateTestHeaderString({
        payload,
        secret: webhookSecret,
        timestamp: opts.timestamp ?? stub.now(),
      });
      return { id, payload, signature };
    },
    complete(sessionId, nowSeconds = stub.now()) {
      const session = stub.sessions.get(sessionId);
      if (!session) throw new Error(`no session ${sessionId}`);
      const metadata =
        (session.subscription_data as Record<string, unknown> | undefined)?.metadata ??
        (session.payment_intent_data as Record<string, unknown> | undefined)?.metadata ??
        {};
      const price = ((session.line_items as Record<string, Record<string, unknown>>)?.["0"]?.price ?? "") as string;
      const events: SignedEvent[] = [];
      if (session.mode === "subscription") {
        const sub = {
          id: rid("sub"),
          object: "subscription",
          status: "active",
          customer: session.customer,
          cancel_at_period_end: false,
          metadata,
          items: { data: [{ price: { id: price }, current_period_end: nowSeconds + 30 * 86400 }] },
          latest_invoice: { id: rid("in"), hosted_invoice_url: "https://invoice.stripe.test/receipt" },
        };
        stub.subscriptions.set(sub.id, sub);
        Object.assign(session, { status: "complete", payment_status: "paid", subscription: sub.id });
        events.push(stub.signedEvent("customer.subscription.created", sub));
        events.push(stub.signedEvent("checkout.session.completed", session));
      } else {
        const intent = {
          id: rid("pi"),
          object: "payment_intent",
          status: "succeeded",
          metadata,
          latest_charge: { id: rid("ch"), refunded: false, receipt_url: "https://pay.stripe.test/receipt" },
        };
        stub.paymentIntents.set(intent.id, intent);
        Object.assign(session, { status: "complete", payment_status: "paid", payment_intent: intent.id });
        events.push(stub.signedEvent("checkout.session.completed", session));
      }
      return events;
    },
  };

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json", "request-id": rid("req") });
    res.end(JSON.stringify(body));
  };
  const missing = (res: ServerResponse, what: string) =>
    json(res, 404, { error: { type: "invalid_request_error", code: "resource_missing", message: `No such ${what}` } });

  async function deliver(events: SignedEvent[]) {
    if (!stub.webhookUrl) return;
    for (const event of events) {
      await fetch(stub.webhookUrl, {
        method: "POST",
        headers: { "content-type": "application/json", "stripe-signature": event.signature },
        body: event.payload,
      });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, base: string) {
    const url = new URL(req.url ?? "/", base);
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const body = parseStripeForm(raw);
    const path = url.pathname;
    const method = req.method ?? "GET";

    // The hosted checkout page (test stub), and its Pay button.
    const page = /^\/checkout\/(cs_[a-f0-9]+)(\/pay)?$/.exec(path);
    if (page) {
      const session = stub.sessions.get(page[1] as string);
      if (!session) return missing(res, "checkout session");
      if (page[2] && method === "POST") {
        await deliver(stub.complete(page[1] as string));
        res.writeHead(303, { location: String(session.success_url) });
        return res.end();
      }
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stripe Checkout (test stub)</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto">
<p role="status" style="background:#fde68a;padding:.5rem;border-radius:.3rem"><strong>TEST STUB</strong>: a local stand-in for Stripe Checkout. No real payment happens.</p>
<h1>Pay for ${String(session.mode) === "subscription" ? "a subscription" : "a purchase"}</h1>
<form method="post" action="/checkout/${page[1]}/pay"><button type="submit" data-testid="stub-pay">Pay (test)</button></form>
<p><a href="${String(session.cancel_url).replace(/"/g, "&quot;")}">Cancel</a></p></body></html>`);
    }

    stub.requests.push({ method, path, body });
    const param = (expected: string, pattern: RegExp) => (method === expected ? pattern.exec(path)?.[1] : undefined);
    const priceId = param("GET", /^\/v1\/prices\/([^/]+)$/);
    const customerId = param("POST", /^\/v1\/customers\/([^/]+)$/);
    const subscriptionId = param("GET", /^\/v1\/subscriptions\/([^/]+)$/);
    const intentId = param("GET", /^\/v1\/payment_intents\/([^/]+)$/);
    if (priceId) {
      const price = stub.prices.get(priceId);
      return price ? json(res, 200, { object: "price", ...price }) : missing(res, "price");
    }
    if (path === "/v1/customers" && method === "POST") {
      const customer = { id: rid("cus"), object: "customer", ...body };
      stub.customers.set(customer.id, customer);
      return json(res, 200, customer);
    }
    if (customerId) {
      const customer = stub.customers.get(customerId);
      if (!customer) return missing(res, "customer");
      Object.assign(customer, body, {
        metadata: { ...(customer.metadata as object), ...(body.metadata as object) },
      });
      return json(res, 200, customer);
    }
    if (path === "/v1/checkout/sessions" && method === "POST") {
      const id = rid("cs");
      const session = { id, object: "checkout.session", status: "open", url: `${base}/checkout/${id}`, ...body };
      stub.sessions.set(id, session);
      return json(res, 200, session);
    }
    if (path === "/v1/billing_portal/sessions" && method === "POST") {
      return json(res, 200, {
        id: rid("bps"),
        object: "billing_portal.session",
        url: `${base}/portal/${body.customer}`,
      });
    }
    // Account deletion (#16): the customer's subscriptions listed, and each live one cancelled at once.
    if (path === "/v1/subscriptions" && method === "GET") {
      const customer = url.searchParams.get("customer");
      const data = [...stub.subscriptions.values()].filter((sub) => sub.customer === customer);
      return json(res, 200, { object: "list", data, has_more: false, url: "/v1/subscriptions" });
    }
    const cancelId = param("DELETE", /^\/v1\/subscriptions\/([^/]+)$/);
    if (cancelId) {
      const sub = stub.subscriptions.get(cancelId);
      if (!sub) return missing(res, "subscription");
      Object.assign(sub, { status: "canceled", canceled_at: Math.floor(Date.now() / 1000) });
      return json(res, 200, sub);
    }
    if (subscriptionId) {
      const sub = stub.subscriptions.get(subscriptionId);
      return sub ? json(res, 200, sub) : missing(res, "subscription");
    }
    if (intentId) {
      const intent = stub.paymentIntents.get(intentId);
      return intent ? json(res, 200, intent) : missing(res, "payment_intent");
    }
    return missing(res, `route ${method} ${path}`);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res, base).catch((error) => json(res, 500, { error: { message: String(error) } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(stub, {
    url: base,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
