import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditEvents } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { seedAdmin } from "../admin/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser, registerClient, sessionCookie, type TestClient } from "../oauth/helpers.ts";
import { buildStripeApp, RETURN_TO } from "./helpers.ts";
import { type StripeStub, startStripeStub } from "./stripe-stub.ts";

let stub: StripeStub;
let t: TestApp;
let auth: string;
let game: TestClient;
const BASE = "/admin/api/v1/plans";

beforeAll(async () => {
  stub = await startStripeStub();
  stub.prices.set("price_monthly", { id: "price_monthly", type: "recurring" });
  stub.prices.set("price_once", { id: "price_once", type: "one_time" });
  t = await buildStripeApp(stub);
  ({ authorization: auth } = await seedAdmin(t.app));
  await registerClient(t.app);
  game = await registerClient(t.app, { name: "Game", redirectUris: ["https://game.example/cb"] });
});
afterAll(async () => {
  await t?.close();
  await stub?.close();
});

const post = (url: string, payload?: object) =>
  t.app.inject({ method: "POST", url, headers: { authorization: auth }, ...(payload ? { payload } : {}) });

describe("admin API /admin/api/v1/plans", () => {
  it("creates a plan whose kind comes from the Stripe price, with app limits; audited with before and after", async () => {
    const response = await post(BASE, {
      name: "premium",
      stripe_price: "price_monthly",
      entitlements: ["premium", "no-ads", "premium"],
      clients: [game.clientId],
      crypto_price: "5.00",
      crypto_currency: "USD",
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      name: "premium",
      kind: "subscription",
      stripe_price: "price_monthly",
      entitlements: ["premium", "no-ads"],
      clients: [game.clientId],
      crypto_price: "5.00",
      crypto_currency: "USD",
      duration_days: null,
      archived_at: null,
    });
    const once = await post(BASE, {
      name: "pass-30",
      stripe_price: "price_once",
      entitlements: ["pass"],
      duration_days: 30,
    });
    expect(once.json()).toMatchObject({ kind: "one_time", duration_days: 30, clients: null });
    const [row] = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "billing.plan_created"));
    expect(row?.actorId).toBeTruthy();
    expect(row?.details).toMatchObject({ plan: "premium", before: null, after: { kind: "subscription" } });
  });

  it("lists, shows and archives; an archived plan cannot be bought", async () => {
    await post(BASE, { name: "old", crypto_price: "1", crypto_currency: "EUR", entitlements: ["old"] });
    const list = await t.app.inject({ url: BASE, headers: { authorization: auth } });
    expect(list.json().data.map((p: { name: string }) => p.name)).toContain("old");
    expect((await t.app.inject({ url: `${BASE}/old`, headers: { authorization: auth } })).json().name).toBe("old");
    const archived = await post(`${BASE}/old/archive`);
    expect(archived.statusCode).toBe(200);
    expect(archived.json().archived_at).not.toBeNull();
    expect((await post(`${BASE}/old/archive`)).json().error.code).toBe("PLAN_ARCHIVED");
    const after = await t.app.inject({ url: BASE, headers: { authorization: auth } });
    expect(after.json().data.map((p: { name: string }) => p.name)).not.toContain("old");
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const buy = await t.app.inject({
      url: `/billing/checkout?plan=old&return_to=${encodeURIComponent(RETURN_TO)}`,
      headers: { cookie },
    });
    expect(buy.statusCode).toBe(409);
    expect(buy.body).toContain("PLAN_ARCHIVED");
  });

  it("hostile input: a 4xx with a code, never a 500, never a half-written plan", async () => {
    const cases: [object, number, string][] = [
      [{ name: "premium", stripe_price: "price_monthly", entitlements: ["x"] }, 409, "PLAN_EXISTS"],
      [{ name: "Bad Name", crypto_price: "1", crypto_currency: "USD", entitlements: ["x"] }, 400, "VALIDATION_FAILED"],
      [{ name: "no-price", entitlements: ["x"] }, 400, "VALIDATION_FAILED"],
      [{ name: "no-ent", crypto_price: "1", crypto_currency: "USD", entitlements: [] }, 400, "VALIDATION_FAILED"],
      [{ name: "neg", crypto_price: "-1", crypto_currency: "USD", entitlements: ["x"] }, 400, "VALIDATION_FAILED"],
      [{ name: "cur", crypto_price: "1", entitlements: ["x"] }, 400, "VALIDATION_FAILED"],
      [{ name: "ghost", stripe_price: "price_missing", entitlements: ["x"] }, 400, "VALIDATION_FAILED"],
      [
        { name: "sub-days", stripe_price: "price_monthly", entitlements: ["x"], duration_days: 30 },
        400,
        "VALIDATION_FAILED",
      ],
      [
        { name: "app", crypto_price: "1", crypto_currency: "USD", entitlements: ["x"], clients: ["nope"] },
        404,
        "CLIENT_NOT_FOUND",
      ],
      [
        {
          name: "huge",
          crypto_price: "1",
          crypto_currency: "USD",
          entitlements: Array.from({ length: 500 }, (_, i) => `e${i}`),
        },
        400,
        "VALIDATION_FAILED",
      ],
      [
        { name: "extra", crypto_price: "1", crypto_currency: "USD", entitlements: ["x"], kind: "subscription" },
        400,
        "VALIDATION_FAILED",
      ],
    ];
    for (const [payload, status, code] of cases) {
      const response = await post(BASE, payload);
      expect(response.statusCode, JSON.stringify(payload)).toBe(status);
      expect(response.json().error.code).toBe(code);
    }
    const names = (await t.app.inject({ url: `${BASE}?include_archived=true`, headers: { authorization: auth } }))
      .json()
      .data.map((p: { name: string }) => p.name);
    expect(names.sort()).toEqual(["old", "pass-30", "premium"]);
    expect((await t.app.inject({ url: `${BASE}/nope`, headers: { authorization: auth } })).json().error.code).toBe(
      "PLAN_NOT_FOUND",
    );
    expect(
      (await t.app.inject({ method: "DELETE", url: `${BASE}/premium`, headers: { authorization: auth } })).statusCode,
    ).toBe(405);
  });

  it("is admin-only", async () => {
    const anonymous = await t.app.inject({ url: BASE });
    expect(anonymous.statusCode).toBe(401);
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const notAdmin = await t.app.inject({ url: BASE, headers: { cookie } });
    expect(notAdmin.statusCode).toBe(403);
  });
});

describe("billing off (no provider key)", () => {
  it("pages say so, the API answers BILLING_DISABLED", async () => {
    const off = await buildTestApp();
    try {
      const { authorization } = await seedAdmin(off.app);
      const user = await createUser(off.app);
      const { cookie } = await sessionCookie(off.app, user);
      const page = await off.app.inject({ url: "/billing/checkout?plan=premium&return_to=x", headers: { cookie } });
      expect(page.statusCode).toBe(501);
      expect(page.body).toContain("Payments are off");
      const account = await off.app.inject({ url: "/account/billing", headers: { cookie } });
      expect(account.statusCode).toBe(200);
      expect(account.body).toContain("Payments are off on this server");
      const api = await off.app.inject({ url: BASE, headers: { authorization } });
      expect(api.statusCode).toBe(501);
      expect(api.json().error.code).toBe("BILLING_DISABLED");
      const hook = await off.app.inject({
        method: "POST",
        url: "/webhooks/btcpay",
        headers: { "content-type": "application/json", "btcpay-sig": "sha256=00" },
        payload: "{}",
      });
      expect(hook.statusCode).toBe(501);
      expect(hook.json().error.code).toBe("BILLING_DISABLED");
    } finally {
      await off.close();
    }
  }, 60_000);
});

describe("CLI plans", () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-plans-cli-"));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  async function cli(argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      env: {
        NODE_ENV: "test",
        DATA_DIR: dataDir,
        TESSERA_MASTER_KEY: "33".repeat(32),
        LOG_LEVEL: "silent",
        STRIPE_SECRET_KEY: "sk_test_cli",
        STRIPE_WEBHOOK_SECRET: stub.webhookSecret,
        STRIPE_API_URL: stub.url,
      },
    });
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  }

  it("create, list, show, archive with --json; bad input exits 64/65 with the code", async () => {
    const created = await cli([
      "plans",
      "create",
      "--name",
      "premium",
      "--stripe-price",
      "price_monthly",
      "--entitlement",
      "premium",
      "--entitlement",
      "no-ads",
      "--crypto-price",
      "5.00",
      "--crypto-currency",
      "USD",
      "--json",
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({
      name: "premium",
      kind: "subscription",
      entitlements: ["premium", "no-ads"],
    });
    const list = await cli(["plans", "list", "--json"]);
    expect(JSON.parse(list.stdout).map((p: { name: string }) => p.name)).toEqual(["premium"]);
    const show = await cli(["plans", "show", "premium"]);
    expect(show.stdout).toContain("entitlements: premium, no-ads");
    expect((await cli(["plans", "archive", "premium", "--json"])).code).toBe(0);
    expect(JSON.parse((await cli(["plans", "list", "--all", "--json"])).stdout)[0].archived_at).not.toBeNull();
    const dup = await cli([
      "plans",
      "create",
      "--name",
      "premium",
      "--crypto-price",
      "1",
      "--crypto-currency",
      "USD",
      "--entitlement",
      "x",
    ]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain("PLAN_EXISTS");
    const bad = await cli([
      "plans",
      "create",
      "--name",
      "x",
      "--crypto-price",
      "abc",
      "--crypto-currency",
      "USD",
      "--entitlement",
      "x",
    ]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toContain("VALIDATION_FAILED");
    expect((await cli(["plans", "create", "--name", "x"])).code).toBe(64);
  }, 240_000);
});
