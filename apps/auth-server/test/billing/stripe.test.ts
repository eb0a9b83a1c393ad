import { auditEvents, billingCustomers, billingEvents } from "@tessera/db";
import { and, eq, like } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteAccount } from "../../src/libraries/accounts/profile.ts";
import { Browser } from "../accounts/helpers.ts";
import { seedAdmin } from "../admin/helpers.ts";
import type { TestApp } from "../helpers.ts";
import { createUser, registerClient, sessionCookie } from "../oauth/helpers.ts";
import { buildStripeApp, deliverStripe, grantsOf, ownedAt, purchaseOf, RETURN_TO } from "./helpers.ts";
import { type StripeStub, startStripeStub } from "./stripe-stub.ts";

let stub: StripeStub;
let t: TestApp;
let auth: string;

beforeAll(async () => {
  stub = await startStripeStub();
  stub.prices.set("price_premium", { id: "price_premium", type: "recurring" });
  stub.prices.set("price_pass", { id: "price_pass", type: "one_time" });
  t = await buildStripeApp(stub);
  stub.now = () => Math.floor(t.clock.now().getTime() / 1000);
  ({ authorization: auth } = await seedAdmin(t.app));
  await registerClient(t.app);
  const plan = (payload: object) =>
    t.app.inject({ method: "POST", url: "/admin/api/v1/plans", headers: { authorization: auth }, payload });
  expect(
    (await plan({ name: "premium", stripe_price: "price_premium", entitlements: ["premium", "no-ads"] })).statusCode,
  ).toBe(201);
  expect(
    (await plan({ name: "pass", stripe_price: "price_pass", entitlements: ["season-pass"], duration_days: 30 }))
      .statusCode,
  ).toBe(201);
});
afterAll(async () => {
  await t?.close();
  await stub?.close();
});

/** A signed-in buyer who went through checkout for a plan; returns the stub's session id. */
async function checkout(plan: string) {
  const user = await createUser(t.app, { password: "correct horse battery staple" });
  const { cookie } = await sessionCookie(t.app, user);
  const response = await t.app.inject({
    method: "GET",
    url: `/billing/checkout?plan=${plan}&return_to=${encodeURIComponent(RETURN_TO)}`,
    headers: { cookie },
  });
  expect(response.statusCode).toBe(303);
  const sessionId = String(response.headers.location).split("/checkout/")[1] ?? "";
  return { user, cookie, sessionId, location: String(response.headers.location) };
}

/** Buys a plan: checkout, pay at the stub, deliver the signed events. */
async function buy(plan: string) {
  const bought = await checkout(plan);
  const events = stub.complete(bought.sessionId);
  for (const event of events)
    expect((await deliverStripe(t.app, event)).json()).toEqual({ received: true, duplicate: false });
  const session = stub.sessions.get(bought.sessionId) as Record<string, string>;
  return { ...bought, events, ref: session.subscription ?? session.payment_intent ?? "" };
}

const nowSeconds = () => Math.floor(t.clock.now().getTime() / 1000);

describe("checkout", () => {
  it("needs a session: a signed-out browser goes to the sign-in page and comes back", async () => {
    const url = `/billing/checkout?plan=premium&return_to=${encodeURIComponent(RETURN_TO)}`;
    const response = await t.app.inject({ method: "GET", url });
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe(`/login?return_to=${encodeURIComponent(url)}`);
  });

  it("creates the Stripe customer once, and a Checkout Session with the user and plan in its metadata; grants nothing", async () => {
    const before = stub.requests.length;
    const { user, cookie, location } = await checkout("premium");
    expect(location).toMatch(new RegExp(`^${stub.url}/checkout/cs_`));
    const again = await t.app.inject({
      method: "GET",
      url: `/billing/checkout?plan=premium&return_to=${encodeURIComponent(RETURN_TO)}`,
      headers: { cookie },
    });
    expect(again.statusCode).toBe(303);
    const calls = stub.requests.slice(before);
    expect(calls.filter((c) => c.path === "/v1/customers")).toHaveLength(1);
    const customer = calls.find((c) => c.path === "/v1/customers");
    expect(customer?.body).toMatchObject({ email: user.email, metadata: { tessera_user_id: user.id } });
    const sessions = calls.filter((c) => c.path === "/v1/checkout/sessions");
    expect(sessions).toHaveLength(2);
    const plan = (await t.app.inject({ url: "/admin/api/v1/plans/premium", headers: { authorization: auth } })).json();
    expect(sessions[0]?.body).toMatchObject({
      mode: "subscription",
      client_reference_id: user.id,
      metadata: { tessera_user_id: user.id, tessera_plan_id: plan.id },
      subscription_data: { metadata: { tessera_user_id: user.id, tessera_plan_id: plan.id } },
      line_items: { "0": { price: "price_premium", quantity: "1" } },
    });
    expect(String(sessions[0]?.body.success_url)).toBe(
      `${t.app.ctx.config.issuer}/billing/return?status=processing&return_to=${encodeURIComponent(RETURN_TO)}`,
    );
    expect(await grantsOf(t.app, user.id)).toEqual([]);
  });

  it("refuses a return_to that is not an app registered with Tessera (no open redirect), and unknown plans", async () => {
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    for (const returnTo of [
      "https://evil.example/x",
      "javascript:alert(1)",
      "https://shop.example.evil.example/",
      "/account",
    ]) {
      const response = await t.app.inject({
        url: `/billing/checkout?plan=premium&return_to=${encodeURIComponent(returnTo)}`,
        headers: { cookie },
      });
      expect(response.statusCode, returnTo).toBe(400);
      expect(response.body).toContain("RETURN_TO_NOT_REGISTERED");
    }
    const unknown = await t.app.inject({
      url: `/billing/checkout?plan=gold&return_to=${encodeURIComponent(RETURN_TO)}`,
      headers: { cookie },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).toContain("PLAN_NOT_FOUND");
    const crypto = await t.app.inject({
      url: `/billing/checkout?plan=premium&method=crypto&return_to=${encodeURIComponent(RETURN_TO)}`,
      headers: { cookie },
    });
    expect(crypto.statusCode).toBe(400);
    expect(crypto.body).toContain("PAYMENT_PROVIDER_UNAVAILABLE");
  });

  it("the return page only says the payment is processing", async () => {
    const response = await t.app.inject({
      url: `/billing/return?status=processing&return_to=${encodeURIComponent(RETURN_TO)}`,
    });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("Your payment is being processed");
    expect(response.body).toContain(`href="${RETURN_TO}"`);
  });
});

describe("POST /webhooks/stripe", () => {
  it("a paid subscription grants the plan's entitlements, as purchase grants with the purchase id; audited with the event id", async () => {
    const { user, ref, events } = await buy("premium");
    const purchase = await purchaseOf(t.app, ref);
    expect(purchase).toMatchObject({ userId: user.id, provider: "stripe", kind: "subscription", status: "active" });
    const grants = await grantsOf(t.app, user.id);
    expect(grants.map((g) => [g.name, g.source, g.sourceRef, g.expiresAt, g.clientIds])).toEqual([
      ["no-ads", "purchase", purchase?.id, null, null],
      ["premium", "purchase", purchase?.id, null, null],
    ]);
    const audits = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, user.id), eq(auditEvents.event, "billing.entitlement_granted")));
    expect(audits).toHaveLength(2);
    expect(audits[0]?.details).toMatchObject({
      provider: "stripe",
      provider_event_id: events[0]?.id,
      purchase_id: purchase?.id,
    });
  });

  it("a plan limited to some apps passes the limit to its grants (internal client ids)", async () => {
    const game = await registerClient(t.app, { name: "Game" });
    const created = await t.app.inject({
      method: "POST",
      url: "/admin/api/v1/plans",
      headers: { authorization: auth },
      payload: { name: "game-gold", stripe_price: "price_premium", entitlements: ["gold"], clients: [game.clientId] },
    });
    expect(created.statusCode).toBe(201);
    const { user } = await buy("game-gold");
    expect((await grantsOf(t.app, user.id)).map((g) => [g.name, g.clientIds])).toEqual([["gold", [game.client.id]]]);
  });

  it("a replayed event is a 200 no-op; a new event about the same state changes nothing", async () => {
    const { user, events, ref } = await buy("premium");
    const before = await grantsOf(t.app, user.id);
    const auditCount = async () =>
      (await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.userId, user.id))).length;
    const audits = await auditCount();
    t.clock.advance(60);
    const calls = stub.requests.length;
    for (const event of events) {
      const replay = await deliverStripe(t.app, event);
      expect(replay.statusCode).toBe(200);
      expect(replay.json()).toEqual({ received: true, duplicate: true });
    }
    expect(stub.requests.length).toBe(calls); // a replay does not even ask Stripe
    const sub = stub.subscriptions.get(ref) as Record<string, unknown>;
    expect((await deliverStripe(t.app, stub.signedEvent("customer.subscription.updated", sub))).statusCode).toBe(200);
    expect(await grantsOf(t.app, user.id)).toEqual(before);
    expect(await auditCount()).toBe(audits);
  });

  it("events out of order converge on Stripe's current state: a late 'created' after 'deleted' grants nothing", async () => {
    const { user, ref } = await buy("premium");
    const sub = stub.subscriptions.get(ref) as Record<string, unknown>;
    const created = stub.signedEvent("customer.subscription.created", { ...sub });
    sub.status = "canceled";
    expect((await deliverStripe(t.app, stub.signedEvent("customer.subscription.deleted", sub))).statusCode).toBe(200);
    expect(await grantsOf(t.app, user.id)).toEqual([]);
    expect((await deliverStripe(t.app, created)).statusCode).toBe(200);
    expect(await grantsOf(t.app, user.id)).toEqual([]);
    expect((await purchaseOf(t.app, ref))?.status).toBe("canceled");
    const removed = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, user.id), eq(auditEvents.event, "billing.entitlement_removed")));
    expect(removed).toHaveLength(2);
  });

  it("a forged or stale signature gets 400 WEBHOOK_SIGNATURE_INVALID, records nothing and changes nothing", async () => {
    const { user, ref } = await buy("premium");
    const before = await grantsOf(t.app, user.id);
    const sub = stub.subscriptions.get(ref) as Record<string, unknown>;
    sub.status = "canceled";
    const good = stub.signedEvent("customer.subscription.deleted", sub);
    const forged = { payload: good.payload, signature: good.signature.replace(/v1=[0-9a-f]{4}/, "v1=0000") };
    const tampered = { payload: good.payload.replace("canceled", "cancelled"), signature: good.signature };
    const stale = stub.signedEvent("customer.subscription.deleted", sub, {
      id: good.id,
      timestamp: nowSeconds() - 301,
    });
    const unsigned = { payload: good.payload, signature: "" };
    for (const bad of [forged, tampered, stale, unsigned]) {
      const response = await deliverStripe(t.app, bad);
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe("WEBHOOK_SIGNATURE_INVALID");
    }
    expect(await grantsOf(t.app, user.id)).toEqual(before);
    expect(await t.app.ctx.db.select().from(billingEvents).where(eq(billingEvents.eventId, good.id))).toEqual([]);
    // The genuine delivery of the same event id still works afterwards.
    expect((await deliverStripe(t.app, good)).json()).toEqual({ received: true, duplicate: false });
    expect(await grantsOf(t.app, user.id)).toEqual([]);
  });

  it("cancel at period end keeps the entitlements until the period ends, then they are gone without any sweep", async () => {
    const { user, ref } = await buy("premium");
    const sub = stub.subscriptions.get(ref) as {
      cancel_at_period_end: boolean;
      items: { data: { current_period_end: number }[] };
    };
    sub.cancel_at_period_end = true;
    const periodEnd = new Date((sub.items.data[0]?.current_period_end ?? 0) * 1000);
    expect((await deliverStripe(t.app, stub.signedEvent("customer.subscription.updated", sub))).statusCode).toBe(200);
    expect((await grantsOf(t.app, user.id)).map((g) => g.expiresAt)).toEqual([periodEnd, periodEnd]);
    expect(await ownedAt(t.app, user.id, new Date(periodEnd.getTime() - 1000))).toEqual(["no-ads", "premium"]);
    expect(await ownedAt(t.app, user.id, periodEnd)).toEqual([]);
  });

  it("a failed renewal keeps the entitlements for the grace period, then drops them; paying again restores them", async () => {
    const { user, ref } = await buy("premium");
    const sub = stub.subscriptions.get(ref) as Record<string, unknown>;
    sub.status = "past_due";
    const failedAt = t.clock.now();
    const failed = stub.signedEvent("invoice.payment_failed", {
      id: "in_failed",
      object: "invoice",
      subscription: ref,
    });
    expect((await deliverStripe(t.app, failed)).statusCode).toBe(200);
    const graceEnd = new Date(failedAt.getTime() + 3 * 86400 * 1000);
    expect((await grantsOf(t.app, user.id)).map((g) => g.expiresAt)).toEqual([graceEnd, graceEnd]);
    // A second failure notice later does not restart the grace period.
    t.clock.advance(86400);
    const again = stub.signedEvent("invoice.payment_failed", {
      id: "in_failed2",
      object: "invoice",
      parent: { subscription_details: { subscription: ref } },
    });
    expect((await deliverStripe(t.app, again)).statusCode).toBe(200);
    expect((await grantsOf(t.app, user.id)).map((g) => g.expiresAt)).toEqual([graceEnd, graceEnd]);
    expect(await ownedAt(t.app, user.id, new Date(graceEnd.getTime() - 1000))).toEqual(["no-ads", "premium"]);
    expect(await ownedAt(t.app, user.id, graceEnd)).toEqual([]);
    sub.status = "active";
    const paid = stub.signedEvent("invoice.paid", { id: "in_paid", object: "invoice", subscription: ref });
    expect((await deliverStripe(t.app, paid)).statusCode).toBe(200);
    expect((await grantsOf(t.app, user.id)).map((g) => g.expiresAt)).toEqual([null, null]);
    expect((await purchaseOf(t.app, ref))?.pastDueSince).toBeNull();
  });

  it("a one-time purchase lasts the plan's duration; a refund removes it", async () => {
    const paidAt = t.clock.now();
    const { user, ref } = await buy("pass");
    expect(ref).toMatch(/^pi_/);
    const grants = await grantsOf(t.app, user.id);
    expect(grants.map((g) => [g.name, g.expiresAt])).toEqual([
      ["season-pass", new Date(paidAt.getTime() + 30 * 86400_000)],
    ]);
    const intent = stub.paymentIntents.get(ref) as { latest_charge: { id: string; refunded: boolean } };
    intent.latest_charge.refunded = true;
    const refund = stub.signedEvent("charge.refunded", {
      id: intent.latest_charge.id,
      object: "charge",
      payment_intent: ref,
    });
    expect((await deliverStripe(t.app, refund)).statusCode).toBe(200);
    expect(await grantsOf(t.app, user.id)).toEqual([]);
    expect((await purchaseOf(t.app, ref))?.refundedAt).toEqual(t.clock.now());
    const removed = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, user.id), eq(auditEvents.event, "billing.entitlement_removed")));
    expect(removed.map((r) => (r.details as Record<string, unknown>).provider_event_id)).toEqual([refund.id]);
  });

  it("answers 415 for a non-JSON body and 400 for JSON that is not a signed event", async () => {
    const form = await t.app.inject({
      method: "POST",
      url: "/webhooks/stripe",
      headers: { "content-type": "application/x-www-form-urlencoded", "stripe-signature": "t=1,v1=00" },
      payload: "a=b",
    });
    expect(form.statusCode).toBe(415);
    expect(form.json().error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    const junk = await t.app.inject({
      method: "POST",
      url: "/webhooks/stripe",
      headers: { "content-type": "application/json", "stripe-signature": "t=1,v1=00" },
      payload: "{not json",
    });
    expect(junk.statusCode).toBe(400);
    expect(junk.json().error.code).toBe("WEBHOOK_SIGNATURE_INVALID");
  });
});

describe("/account/billing", () => {
  it("lists the user's plans with status, renewal or end date and receipt; the portal button (CSRF) goes to Stripe", async () => {
    const { user, ref } = await buy("premium");
    const sub = stub.subscriptions.get(ref) as {
      cancel_at_period_end: boolean;
      items: { data: { current_period_end: number }[] };
    };
    const browser = new Browser(t.app);
    browser.cookies.set(...((await sessionCookie(t.app, user)).cookie.split("=") as [string, string]));
    const page = await browser.get("/account/billing");
    expect(page.statusCode).toBe(200);
    const periodEnd = new Date((sub.items.data[0]?.current_period_end ?? 0) * 1000).toISOString().slice(0, 10);
    expect(page.body).toContain("premium");
    expect(page.body).toContain(`renews ${periodEnd}`);
    expect(page.body).toContain('href="https://invoice.stripe.test/receipt"');
    sub.cancel_at_period_end = true;
    await deliverStripe(t.app, stub.signedEvent("customer.subscription.updated", sub));
    expect((await browser.get("/account/billing")).body).toContain(`ends ${periodEnd}`);

    const noToken = await browser.post("/account/billing/portal", {});
    expect(noToken.statusCode).toBe(403);
    const portal = await browser.submit("/account/billing", {}, "/account/billing/portal");
    expect(portal.statusCode).toBe(303);
    const [customer] = await t.app.ctx.db.select().from(billingCustomers).where(eq(billingCustomers.userId, user.id));
    expect(portal.headers.location).toBe(`${stub.url}/portal/${customer?.customerId}`);
    expect(stub.requests.at(-1)?.body).toMatchObject({ return_url: `${t.app.ctx.config.issuer}/account/billing` });
  });
});

describe("account deletion", () => {
  it("cancels the deleted user's live subscription at Stripe at once, then detaches the customer", async () => {
    const { user } = await buy("premium");
    const [link] = await t.app.ctx.db.select().from(billingCustomers).where(eq(billingCustomers.userId, user.id));
    const sub = [...stub.subscriptions.values()].find((s) => s.customer === link?.customerId);
    expect(sub?.status).toBe("active");
    await deleteAccount(t.app.ctx, {
      user,
      currentPassword: "correct horse battery staple",
      meta: { ip: "127.0.0.1", userAgent: "vitest" },
    });
    expect(sub?.status).toBe("canceled");
    expect(stub.requests.filter((r) => r.method === "DELETE").map((r) => r.path)).toContain(
      `/v1/subscriptions/${sub?.id}`,
    );
    expect(stub.customers.get(link?.customerId ?? "")).toMatchObject({ email: "", metadata: { tessera_user_id: "" } });
  });

  it("detaches the deleted user from the Stripe customer", async () => {
    const { user } = await checkout("premium");
    const [link] = await t.app.ctx.db.select().from(billingCustomers).where(eq(billingCustomers.userId, user.id));
    expect(link?.customerId).toMatch(/^cus_/);
    await deleteAccount(t.app.ctx, {
      user,
      currentPassword: "correct horse battery staple",
      meta: { ip: "127.0.0.1", userAgent: "vitest" },
    });
    expect(await t.app.ctx.db.select().from(billingCustomers).where(eq(billingCustomers.userId, user.id))).toEqual([]);
    expect(stub.customers.get(link?.customerId ?? "")).toMatchObject({ email: "", metadata: { tessera_user_id: "" } });
    const [detached] = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, user.id), like(auditEvents.event, "billing.customer_detached")));
    expect(detached?.outcome).toBe("success");
  });
});
