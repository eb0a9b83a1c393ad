import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../../../packages/db/src/testing.ts";
import { type RunningDemo, startDemo } from "../../../../scripts/demo.ts";
import { launchTestBrowser, type TestBrowser } from "../../../../test-support/chromium.ts";
import { createPlan } from "../../../auth-server/src/libraries/billing/plans.ts";
import { findUserByEmail } from "../../../auth-server/src/queries/users.ts";
import { grantsOf } from "../../../auth-server/test/billing/helpers.ts";
import { type StripeStub, startStripeStub } from "../../../auth-server/test/billing/stripe-stub.ts";

/**
 * Buying Premium in the demo shop, in a real browser (Debian's Chromium, headless): shop → "Buy Premium" → Tessera's
 * checkout → the payment page, which here is the local Stripe Checkout TEST STUB (labelled as such on screen) →
 * "Pay" → the stub delivers Stripe's signed webhooks to Tessera → Tessera's "processing" page → back to the shop.
 * The official `stripe` package in Tessera talks to the stub through STRIPE_API_URL. Screenshots go to
 * test-output/browser/premium (git-ignored).
 */

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

let demo: RunningDemo;
let stripe: StripeStub;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let context: BrowserContext;
let browser: TestBrowser;
let dataDir: string;

beforeAll(async () => {
  stripe = await startStripeStub();
  stripe.prices.set("price_1PremiumMonthly", { id: "price_1PremiumMonthly", type: "recurring" });
  database = await createTestDatabase();
  dataDir = mkdtempSync(join(tmpdir(), "tessera-premium-"));
  const [authPort, webPort, gamePort] = [await freePort(), await freePort(), await freePort()];
  demo = await startDemo({
    env: {
      NODE_ENV: "test",
      PORT: String(authPort),
      DATA_DIR: dataDir,
      TESSERA_MASTER_KEY: "11".repeat(32),
      LOG_LEVEL: "silent",
      RATE_LIMIT_ENABLED: "false",
      STRIPE_SECRET_KEY: "sk_test_demo",
      STRIPE_WEBHOOK_SECRET: stripe.webhookSecret,
      STRIPE_API_URL: stripe.url,
    },
    database,
    publicHost: "127.0.0.1",
    webPort,
    gamePort,
    stateFile: false,
  });
  stripe.webhookUrl = `${demo.issuer}/webhooks/stripe`;
  await createPlan(
    demo.tessera.ctx,
    { name: "premium", stripe_price: "price_1PremiumMonthly", entitlements: ["premium", "no-ads"] },
    { actorId: null, meta: { ip: undefined, userAgent: "test" }, via: "test" },
  );
  browser = await launchTestBrowser("premium", { width: 1000, height: 760 });
  context = browser.context;
});

afterAll(async () => {
  await browser?.close();
  await demo?.close();
  await stripe?.close();
  await database?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const shot = (page: Page, name: string) => browser.shot(page, name);
const text = (page: Page, testId: string) => page.getByTestId(testId).textContent();

async function ownedByDemoUser(): Promise<string[]> {
  const user = await findUserByEmail(demo.tessera.ctx.db, demo.user.email);
  if (!user) throw new Error("no demo user");
  return (await grantsOf(demo.tessera, user.id)).filter((g) => g.source === "purchase").map((g) => g.name);
}

describe("the demo shop sells Premium through Tessera", () => {
  it("shop → Tessera checkout → Stripe test stub → pay → processing page → the purchase is granted in Tessera", async () => {
    const shop = await context.newPage();
    await shop.goto(demo.webUrl);
    await shop.getByTestId("sign-in").click();
    await shop.waitForURL(`${demo.issuer}/login**`);
    await shop.locator("#email").fill(demo.user.email);
    await shop.locator("#password").fill(demo.user.password);
    await shop.locator("button[type=submit]").click();
    await shop.waitForURL(`${demo.webUrl}/`);
    await shot(shop, "01-shop-signed-in");

    await shop.getByTestId("buy-premium").click();
    await shop.waitForURL(`${stripe.url}/checkout/**`);
    await expect.poll(() => shop.getByRole("status").textContent()).toContain("TEST STUB");
    await shot(shop, "02-stripe-checkout-test-stub");
    expect(await ownedByDemoUser()).toEqual([]); // the redirect to checkout grants nothing

    await shop.getByTestId("stub-pay").click();
    await shop.waitForURL(`${demo.issuer}/billing/return**`);
    expect(await shop.locator("h1").textContent()).toBe("Your payment is being processed");
    await shot(shop, "03-tessera-processing");
    // Only the signed webhook (delivered by the stub before it redirected) granted the entitlements.
    expect(await ownedByDemoUser()).toEqual(["no-ads", "premium"]);

    await shop.getByRole("link", { name: "Continue" }).click();
    await shop.waitForURL(`${demo.webUrl}/`);
    await shot(shop, "04-back-in-the-shop");
    // Back from the checkout the shop refreshes the claims at once (markClaimsStale): Premium without waiting.
    expect(await text(shop, "premium-status")).toContain("★ Premium");
  });

  it("the game shows the premium badge at its next refresh, and the shop says Premium", async () => {
    const game = await context.newPage();
    await game.goto(demo.gameUrl);
    await game.waitForURL(`${demo.gameUrl}/`);
    await expect.poll(() => text(game, "premium-badge"), { timeout: 15_000 }).toBe("★ Premium");
    await shot(game, "05-game-premium-badge");
    const shop = await context.newPage();
    await shop.goto(demo.webUrl);
    expect(await text(shop, "premium-status")).toContain("★ Premium");
  });
});
