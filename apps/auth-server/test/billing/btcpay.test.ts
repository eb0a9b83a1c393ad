import { billingEvents } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAdmin } from "../admin/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser, registerClient, sessionCookie } from "../oauth/helpers.ts";
import { type BtcpayStub, startBtcpayStub } from "./btcpay-stub.ts";
import { grantsOf, purchaseOf, RETURN_TO } from "./helpers.ts";

let btcpay: BtcpayStub;
let t: TestApp;

beforeAll(async () => {
  btcpay = await startBtcpayStub();
  t = await buildTestApp({
    BTCPAY_URL: btcpay.url,
    BTCPAY_API_KEY: btcpay.apiKey,
    BTCPAY_STORE_ID: btcpay.storeId,
    BTCPAY_WEBHOOK_SECRET: btcpay.webhookSecret,
  });
  const { authorization } = await seedAdmin(t.app);
  await registerClient(t.app);
  const created = await t.app.inject({
    method: "POST",
    url: "/admin/api/v1/plans",
    headers: { authorization },
    payload: {
      name: "pass",
      crypto_price: "5.00",
      crypto_currency: "USD",
      entitlements: ["season-pass"],
      duration_days: 30,
    },
  });
  expect(created.statusCode).toBe(201);
  expect(created.json()).toMatchObject({ kind: "one_time", crypto_price: "5.00", crypto_currency: "USD" });
});
afterAll(async () => {
  await t?.close();
  await btcpay?.close();
});

const deliver = (d: { payload: string; signature: string }) =>
  t.app.inject({
    method: "POST",
    url: "/webhooks/btcpay",
    headers: { "content-type": "application/json", "btcpay-sig": d.signature },
    payload: d.payload,
  });

/** A signed-in user starts a crypto checkout; returns the BTCPay invoice id. */
async function checkout(query = "") {
  const user = await createUser(t.app);
  const { cookie } = await sessionCookie(t.app, user);
  const response = await t.app.inject({
    url: `/billing/checkout?plan=pass&return_to=${encodeURIComponent(RETURN_TO)}${query}`,
    headers: { cookie },
  });
  expect(response.statusCode).toBe(303);
  const invoiceId = String(response.headers.location).split("/i/")[1] ?? "";
  expect(response.headers.location).toBe(`${btcpay.url}/i/${invoiceId}`);
  return { user, invoiceId };
}

describe("BTCPay", () => {
  it("creates an invoice for the plan's own price with the user's id in its metadata, and redirects to its checkout link", async () => {
    const { user, invoiceId } = await checkout("&amount=0.01&currency=XXX");
    const body = btcpay.created.at(-1);
    expect(body).toMatchObject({ amount: "5.00", currency: "USD", metadata: { tessera_user_id: user.id } });
    expect(JSON.stringify(body)).not.toContain(user.email);
    expect(btcpay.invoices.has(invoiceId)).toBe(true);
  });

  it("InvoiceSettled grants; a redelivery is a no-op; Expired and Invalid invoices grant nothing", async () => {
    const { user, invoiceId } = await checkout();
    const invoice = btcpay.invoices.get(invoiceId) as Record<string, unknown>;
    // Not settled yet: even an InvoiceSettled delivery grants nothing, because the invoice itself is read.
    expect((await deliver(btcpay.delivery("InvoiceSettled", invoiceId))).statusCode).toBe(200);
    expect(await grantsOf(t.app, user.id)).toEqual([]);
    invoice.status = "Settled";
    const settled = btcpay.delivery("InvoiceSettled", invoiceId);
    expect((await deliver(settled)).json()).toEqual({ received: true, duplicate: false });
    const purchase = await purchaseOf(t.app, invoiceId);
    expect((await grantsOf(t.app, user.id)).map((g) => [g.name, g.sourceRef, g.expiresAt])).toEqual([
      ["season-pass", purchase?.id, new Date(t.clock.now().getTime() + 30 * 86400_000)],
    ]);
    const redelivery = btcpay.delivery("InvoiceSettled", invoiceId, {
      isRedelivery: true,
      originalDeliveryId: JSON.parse(settled.payload).deliveryId,
    });
    expect((await deliver(redelivery)).json()).toEqual({ received: true, duplicate: true });

    for (const status of ["Expired", "Invalid"]) {
      const other = await checkout();
      (btcpay.invoices.get(other.invoiceId) as Record<string, unknown>).status = status;
      expect((await deliver(btcpay.delivery(`Invoice${status}`, other.invoiceId))).statusCode).toBe(200);
      expect(await grantsOf(t.app, other.user.id)).toEqual([]);
    }
  });

  it("an invoice whose amount differs from the plan's price grants nothing", async () => {
    const { user, invoiceId } = await checkout();
    Object.assign(btcpay.invoices.get(invoiceId) as object, { status: "Settled", amount: "0.01" });
    expect((await deliver(btcpay.delivery("InvoiceSettled", invoiceId))).statusCode).toBe(200);
    expect(await grantsOf(t.app, user.id)).toEqual([]);
  });

  it("a forged BTCPay-Sig gets 400 WEBHOOK_SIGNATURE_INVALID and records nothing", async () => {
    const { user, invoiceId } = await checkout();
    (btcpay.invoices.get(invoiceId) as Record<string, unknown>).status = "Settled";
    const good = btcpay.delivery("InvoiceSettled", invoiceId);
    const forged = [
      { payload: good.payload, signature: `sha256=${"0".repeat(64)}` },
      { payload: good.payload.replace("InvoiceSettled", "InvoiceSettled "), signature: good.signature },
      { payload: good.payload, signature: good.signature.replace("sha256=", "") },
      { payload: good.payload, signature: "" },
    ];
    for (const bad of forged) {
      const response = await deliver(bad);
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe("WEBHOOK_SIGNATURE_INVALID");
    }
    expect(await grantsOf(t.app, user.id)).toEqual([]);
    expect(await t.app.ctx.db.select().from(billingEvents).where(eq(billingEvents.eventId, good.deliveryId))).toEqual(
      [],
    );
  });

  it("Stripe is off here: its webhook answers BILLING_DISABLED and card checkout is unavailable", async () => {
    const response = await t.app.inject({
      method: "POST",
      url: "/webhooks/stripe",
      headers: { "content-type": "application/json", "stripe-signature": "t=1,v1=00" },
      payload: "{}",
    });
    expect(response.statusCode).toBe(501);
    expect(response.json().error.code).toBe("BILLING_DISABLED");
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const card = await t.app.inject({
      url: `/billing/checkout?plan=pass&method=card&return_to=${encodeURIComponent(RETURN_TO)}`,
      headers: { cookie },
    });
    expect(card.statusCode).toBe(400);
    expect(card.body).toContain("PAYMENT_PROVIDER_UNAVAILABLE");
  });
});
