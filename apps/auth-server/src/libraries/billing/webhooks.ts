import type { CoreContext, Logger } from "../../context.ts";
import { billingEventRecorded, recordBillingEvent } from "../../queries/billing.ts";
import type { RequestMeta } from "../audit.ts";
import { provider } from "./index.ts";
import type { ProviderName, ProviderPurchase } from "./provider.ts";
import { syncPurchase } from "./sync.ts";

export interface WebhookResult {
  received: true;
  /** True when this event id was already recorded: nothing was done again. */
  duplicate: boolean;
}

/**
 * One signed webhook delivery. The signature is checked on the raw body first (nothing else is read before); then
 * the current state of every object the event names is read from the provider's API (so events arriving twice, late
 * or out of order all converge on the provider's latest state); then, in one transaction, the event id is recorded
 * (a replay stops here) and each purchase's grants are recomputed. A provider error answers 502 and records nothing,
 * so the provider's retry does the work.
 */
export async function handleWebhook(
  ctx: CoreContext,
  log: Logger,
  input: {
    provider: ProviderName;
    rawBody: Buffer;
    headers: Record<string, string | string[] | undefined>;
    meta: RequestMeta;
  },
): Promise<WebhookResult> {
  const payments = provider(ctx.config, input.provider);
  const event = await payments.verifyWebhook(input.rawBody, input.headers, ctx.clock.now());
  // A replay costs one indexed read, not a call to the provider (recording below still decides races).
  if (await billingEventRecorded(ctx.db, input.provider, event.id)) return { received: true, duplicate: true };
  const states: ProviderPurchase[] = [];
  for (const ref of event.refs) {
    const state = await payments.currentState(ref);
    if (state) states.push(state);
  }
  return ctx.db.transaction(async (tx) => {
    const fresh = await recordBillingEvent(tx, {
      provider: input.provider,
      eventId: event.id,
      type: event.type.slice(0, 100),
      receivedAt: ctx.clock.now(),
    });
    if (!fresh) return { received: true as const, duplicate: true };
    for (const state of states) {
      const outcome = await syncPurchase(ctx, tx, { state, eventId: event.id, meta: input.meta });
      if (outcome !== "synced") {
        log.warn({ provider: input.provider, eventId: event.id, outcome }, "billing webhook changed nothing");
      }
    }
    return { received: true as const, duplicate: false };
  });
}
