import { type Env, field, int, readSecret, url } from "./env.ts";

/** Payments (issue #12). Billing is off unless a provider is configured; its pages and API then say so. */
export interface BillingConfig {
  stripe:
    | {
        secretKey: string;
        webhookSecret: string;
        /** Stripe's API base URL; tests point the official `stripe` package at a local stub through it. */
        apiUrl: string;
        /** How old a signed webhook may be (Stripe's `t=` timestamp) before it is refused as stale. */
        webhookToleranceSeconds: number;
      }
    | undefined;
  btcpay: { url: string; apiKey: string; storeId: string; webhookSecret: string } | undefined;
  /** After a renewal payment fails (subscription past due), entitlements stay this long, then drop. */
  gracePeriodSeconds: number;
}

export function billingConfig(env: Env, problems: string[]): BillingConfig {
  const secretKey = readSecret(env, "STRIPE_SECRET_KEY", problems);
  const webhookSecret = readSecret(env, "STRIPE_WEBHOOK_SECRET", problems);
  const apiUrl = field(env, "STRIPE_API_URL", url.default("https://api.stripe.com"), problems);
  const tolerance = field(env, "STRIPE_WEBHOOK_TOLERANCE_SECONDS", int(1, 3600).default(300), problems);
  // Named by what was set (directly or as _FILE), so a bad _FILE reports only its own problem.
  const set = (name: string) => Boolean(env[name] || env[`${name}_FILE`]);
  if (set("STRIPE_SECRET_KEY") && !set("STRIPE_WEBHOOK_SECRET")) {
    problems.push("STRIPE_WEBHOOK_SECRET: required when STRIPE_SECRET_KEY is set");
  }
  if (set("STRIPE_WEBHOOK_SECRET") && !set("STRIPE_SECRET_KEY")) {
    problems.push("STRIPE_SECRET_KEY: required when STRIPE_WEBHOOK_SECRET is set");
  }

  const btcpayUrl = field(env, "BTCPAY_URL", url.optional(), problems);
  const btcpayApiKey = readSecret(env, "BTCPAY_API_KEY", problems);
  const btcpayStoreId = env.BTCPAY_STORE_ID || undefined;
  const btcpayWebhookSecret = readSecret(env, "BTCPAY_WEBHOOK_SECRET", problems);
  const btcpayParts = [btcpayUrl, btcpayApiKey, btcpayStoreId, btcpayWebhookSecret];
  if (btcpayParts.some(Boolean) && !btcpayParts.every(Boolean)) {
    problems.push("BTCPAY_URL / BTCPAY_API_KEY / BTCPAY_STORE_ID / BTCPAY_WEBHOOK_SECRET: set all four or none");
  }
  return {
    stripe:
      secretKey && webhookSecret
        ? { secretKey, webhookSecret, apiUrl: (apiUrl ?? "").replace(/\/+$/, ""), webhookToleranceSeconds: tolerance }
        : undefined,
    btcpay:
      btcpayUrl && btcpayApiKey && btcpayStoreId && btcpayWebhookSecret
        ? {
            url: btcpayUrl.replace(/\/+$/, ""),
            apiKey: btcpayApiKey,
            storeId: btcpayStoreId,
            webhookSecret: btcpayWebhookSecret,
          }
        : undefined,
    gracePeriodSeconds: field(env, "BILLING_GRACE_PERIOD_SECONDS", int(0, 90 * 86400).default(3 * 86400), problems),
  };
}
