import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAdmin } from "../admin/helpers.ts";
import type { TestApp } from "../helpers.ts";
import {
  createUser,
  decodeJwt,
  getCode,
  redeem,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
} from "../oauth/helpers.ts";
import { buildStripeApp, deliverStripe, grantsOf, RETURN_TO } from "./helpers.ts";
import { type StripeStub, startStripeStub } from "./stripe-stub.ts";

/**
 * "Buy once, unlock everywhere", through the real RP flow: the game holds tokens, the user buys Premium in the shop,
 * and the game's next refresh carries the entitlement in its `entitlements` claim.
 */
let stub: StripeStub;
let t: TestApp;
let shop: TestClient;
let game: TestClient;

beforeAll(async () => {
  stub = await startStripeStub();
  stub.prices.set("price_premium", { id: "price_premium", type: "recurring" });
  t = await buildStripeApp(stub);
  stub.now = () => Math.floor(t.clock.now().getTime() / 1000);
  const { authorization } = await seedAdmin(t.app);
  shop = await registerClient(t.app, { name: "Shop" });
  game = await registerClient(t.app, { name: "Game" });
  const created = await t.app.inject({
    method: "POST",
    url: "/admin/api/v1/plans",
    headers: { authorization },
    payload: { name: "premium", stripe_price: "price_premium", entitlements: ["premium", "no-ads"] },
  });
  expect(created.statusCode).toBe(201);
});
afterAll(async () => {
  await t?.close();
  await stub?.close();
});

const SCOPE = "openid profile email roles offline_access";

describe("buy in one app, see it in another", () => {
  it("the game's next refresh carries the entitlement bought in the shop", async () => {
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const { code, verifier } = await getCode(t.app, game, cookie, { scope: SCOPE });
    const first = (await redeem(t.app, game, code, verifier)).json();
    expect(decodeJwt(first.id_token).payload.entitlements ?? []).toEqual([]);

    // The shop sends the user to Tessera's checkout; the user pays; Stripe's signed webhooks arrive.
    const checkout = await t.app.inject({
      url: `/billing/checkout?plan=premium&return_to=${encodeURIComponent(RETURN_TO)}`,
      headers: { cookie },
    });
    expect(checkout.statusCode).toBe(303);
    const sessionId = String(checkout.headers.location).split("/checkout/")[1] ?? "";
    for (const event of stub.complete(sessionId)) expect((await deliverStripe(t.app, event)).statusCode).toBe(200);
    expect((await grantsOf(t.app, user.id)).map((g) => g.name)).toEqual(["no-ads", "premium"]);

    const refreshed = await refresh(t.app, game, first.refresh_token);
    expect(refreshed.statusCode).toBe(200);
    const claims = decodeJwt(refreshed.json().id_token).payload;
    expect([...(claims.entitlements as string[])].sort()).toEqual(["no-ads", "premium"]);
    expect(shop.clientId).not.toBe(game.clientId);
  });
});
