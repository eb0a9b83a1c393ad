import type { Config } from "../../config/index.ts";
import { AppError } from "../../errors/index.ts";
import { createBtcpayProvider } from "./btcpay.ts";
import type { PaymentProvider, ProviderName } from "./provider.ts";
import { createStripeProvider } from "./stripe.ts";

export type { PaymentProvider, ProviderName } from "./provider.ts";

const cache = new WeakMap<Config, Map<ProviderName, PaymentProvider>>();

/** The configured providers (built once per config: the Stripe client keeps its connection pool). */
export function paymentProviders(config: Config): Map<ProviderName, PaymentProvider> {
  let providers = cache.get(config);
  if (!providers) {
    providers = new Map();
    if (config.billing.stripe) providers.set("stripe", createStripeProvider(config.billing.stripe));
    if (config.billing.btcpay) providers.set("btcpay", createBtcpayProvider(config.billing.btcpay));
    cache.set(config, providers);
  }
  return providers;
}

export function billingEnabled(config: Config): boolean {
  return paymentProviders(config).size > 0;
}

/** The provider, or BILLING_DISABLED when it is not configured. */
export function provider(config: Config, name: ProviderName): PaymentProvider {
  const found = paymentProviders(config).get(name);
  if (!found) throw new AppError("BILLING_DISABLED");
  return found;
}
