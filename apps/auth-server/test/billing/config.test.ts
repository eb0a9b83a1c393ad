import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, testConfig } from "../../src/config/index.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-billing-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(env: Record<string, string>): string[] {
  try {
    testConfig(env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe("billing settings", () => {
  it("billing is off by default; Stripe needs its key and webhook secret together", () => {
    expect(testConfig().billing).toMatchObject({ stripe: undefined, btcpay: undefined, gracePeriodSeconds: 259200 });
    expect(problems({ STRIPE_SECRET_KEY: "sk_test_x" })).toEqual([
      "STRIPE_WEBHOOK_SECRET: required when STRIPE_SECRET_KEY is set",
    ]);
    expect(problems({ STRIPE_WEBHOOK_SECRET: "whsec_x" })).toEqual([
      "STRIPE_SECRET_KEY: required when STRIPE_WEBHOOK_SECRET is set",
    ]);
    expect(problems({ STRIPE_SECRET_KEY: "sk", STRIPE_WEBHOOK_SECRET: "wh", STRIPE_API_URL: "ftp://x" })).toEqual([
      "STRIPE_API_URL: expected an http(s) URL",
    ]);
  });

  it("secrets may come from _FILE (the trailing newline dropped); both forms at once is an error", () => {
    const key = join(dir, "stripe-key");
    const hook = join(dir, "stripe-webhook");
    writeFileSync(key, "sk_test_from_file\n");
    writeFileSync(hook, "whsec_from_file\n");
    const config = testConfig({ STRIPE_SECRET_KEY_FILE: key, STRIPE_WEBHOOK_SECRET_FILE: hook });
    expect(config.billing.stripe).toMatchObject({
      secretKey: "sk_test_from_file",
      webhookSecret: "whsec_from_file",
      apiUrl: "https://api.stripe.com",
      webhookToleranceSeconds: 300,
    });
    expect(problems({ STRIPE_SECRET_KEY: "a", STRIPE_SECRET_KEY_FILE: key, STRIPE_WEBHOOK_SECRET: "b" })).toEqual([
      "STRIPE_SECRET_KEY: set either STRIPE_SECRET_KEY or STRIPE_SECRET_KEY_FILE, not both",
    ]);
  });

  it("BTCPay needs all four settings; the grace period is bounded", () => {
    expect(problems({ BTCPAY_URL: "https://btcpay.example", BTCPAY_API_KEY: "k" })).toEqual([
      "BTCPAY_URL / BTCPAY_API_KEY / BTCPAY_STORE_ID / BTCPAY_WEBHOOK_SECRET: set all four or none",
    ]);
    const config = testConfig({
      BTCPAY_URL: "https://btcpay.example/",
      BTCPAY_API_KEY: "k",
      BTCPAY_STORE_ID: "s",
      BTCPAY_WEBHOOK_SECRET: "w",
      BILLING_GRACE_PERIOD_SECONDS: "0",
    });
    expect(config.billing.btcpay).toEqual({
      url: "https://btcpay.example",
      apiKey: "k",
      storeId: "s",
      webhookSecret: "w",
    });
    expect(config.billing.gracePeriodSeconds).toBe(0);
    expect(problems({ BILLING_GRACE_PERIOD_SECONDS: "-1" })).toEqual([
      "BILLING_GRACE_PERIOD_SECONDS: must be at least 0",
    ]);
  });
});
