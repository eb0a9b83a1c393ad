import { billingEvents, purchases } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAdmin } from "../admin/helpers.ts";
import type { TestApp } from "../helpers.ts";
import { createUser, registerClient, sessionCookie } from "../oauth/helpers.ts";
import { buildStripeApp, deliverStripe, grantsOf, RETURN_TO } from "./helpers.ts";
import { type StripeStub, startStripeStub } from "./stripe-stub.ts";

/**
 * Webhooks arrive in parallel (Stripe sends subscription.created, checkout.session.completed and invoice.paid within
 * milliseconds, and retries overlap). On real PostgreSQL (TEST_DATABASE_URL) these run truly concurrently: one
 * purchase row, one set of grants, every delivery a 200, a duplicate delivery recorded once.
 */
let stub: StripeStub;
let t: TestApp;

beforeAll(async () => {
  stub = await startStripeStub();
  stub.prices.set("price_premium", { id: "price_premium", type: "recurring" });
  t = await buildStripeApp(stub);
  stub.now = () => Math.floor(t.clock.now().getTime() / 1000);
  const { authorization } = await seedAdmin(t.app);
  await registerClient(t.app);
  await t.app.inject({
    method: "POST",
    url: "/admin/api/v1/plans",
    headers: { authorization },
    payload: { name: "premium", stripe_price: "price_premium", entitlements: ["premium", "no-ads", "badge"] },
  });
});
afterAll(async () => {
  await t?.close();
  await stub?.close();
});

describe("parallel webhooks", () => {
  it("many events about one subscription at once: one purchase, one set of grants, no 500", async () => {
    for (let round = 0; round < 3; round++) {
      const user = await createUser(t.app);
      const { cookie } = await sessionCookie(t.app, user);
      const checkout = await t.app.inject({
        url: `/billing/checkout?plan=premium&return_to=${encodeURIComponent(RETURN_TO)}`,
        headers: { cookie },
      });
      const sessionId = String(checkout.headers.location).split("/checkout/")[1] ?? "";
      const events = stub.complete(sessionId);
      const ref = String((stub.sessions.get(sessionId) as Record<string, unknown>).subscription);
      const sub = stub.subscriptions.get(ref) as Record<string, unknown>;
      const more = Array.from({ length: 4 }, () => stub.signedEvent("customer.subscription.updated", sub));
      const all = [...events, ...more, ...events, more[0] as (typeof more)[0]];
      const responses = await Promise.all(all.map((event) => deliverStripe(t.app, event)));
      expect(responses.map((r) => r.statusCode)).toEqual(all.map(() => 200));
      const fresh = responses.filter((r) => r.json().duplicate === false);
      expect(fresh).toHaveLength(events.length + more.length);
      expect(await t.app.ctx.db.select().from(purchases).where(eq(purchases.providerRef, ref))).toHaveLength(1);
      expect((await grantsOf(t.app, user.id)).map((g) => g.name)).toEqual(["badge", "no-ads", "premium"]);
      for (const event of [...events, ...more]) {
        expect(await t.app.ctx.db.select().from(billingEvents).where(eq(billingEvents.eventId, event.id))).toHaveLength(
          1,
        );
      }
    }
  });
});
