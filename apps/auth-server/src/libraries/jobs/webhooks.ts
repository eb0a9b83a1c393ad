import type { AppContext, Logger } from "../../context.ts";
import { type ClaimedDelivery, claimDueDeliveries, markDelivered, markFailed } from "../../queries/webhooks.ts";
import { addSeconds } from "../clock.ts";
import { decrypt } from "../crypto.ts";
import { secretAad } from "../webhooks/endpoints.ts";
import { webhookHeaders } from "../webhooks/signing.ts";

/**
 * Webhook delivery (issue #16), modelled on the back-channel logout queue: rows of webhook_deliveries are written in
 * the transaction of the change they announce; the worker claims due rows (FOR UPDATE SKIP LOCKED, leased), POSTs the
 * signed event and records the outcome. Failures are retried with exponential backoff and jitter; after
 * `maxAttempts` the delivery is dead (listed for admins, who may redeliver it). Per client and user only the oldest
 * pending delivery is ever claimed, so a receiver sees a user's events in order. The row id is the `webhook-id` on
 * every attempt, across retries and restarts, so a receiver that deduplicates on it acts exactly once.
 */
export const WEBHOOK_DELIVERY = {
  batchSize: 50,
  /** A claimed delivery is not picked again before this; a process that died mid-delivery is retried after it. */
  leaseSeconds: 60,
  timeoutMs: 5000,
  /** Delay after the first failure, doubled on each further failure up to maxDelaySeconds, then ±20% jitter. */
  baseDelaySeconds: 5,
  maxDelaySeconds: 6 * 3600,
  /** 5 s doubling to 6 h: dead after roughly 1.5 days of failures. */
  maxAttempts: 15,
} as const;

/** The delay before attempt `attempts + 1`, after `attempts` failures, with ±20% jitter (`random` in [0, 1)). */
export function webhookRetryDelaySeconds(attempts: number, random: number = Math.random()): number {
  const base = Math.min(
    WEBHOOK_DELIVERY.baseDelaySeconds * 2 ** Math.max(0, attempts - 1),
    WEBHOOK_DELIVERY.maxDelaySeconds,
  );
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random)));
}

export interface WebhookDeliveryReport {
  delivered: number;
  failed: number;
  dead: number;
}

/** One run: claims due deliveries and POSTs them in parallel. Safe to run on every instance at once. */
export async function deliverWebhooks(
  ctx: AppContext,
  log?: Logger,
  options: { timeoutMs?: number } = {},
): Promise<WebhookDeliveryReport> {
  const now = ctx.clock.now();
  const claimed = await claimDueDeliveries(
    ctx.db,
    now,
    addSeconds(now, WEBHOOK_DELIVERY.leaseSeconds),
    WEBHOOK_DELIVERY.batchSize,
  );
  const report: WebhookDeliveryReport = { delivered: 0, failed: 0, dead: 0 };
  await Promise.all(
    claimed.map(async (claimed) => {
      const problem = await deliver(ctx, claimed, options.timeoutMs ?? WEBHOOK_DELIVERY.timeoutMs);
      const done = ctx.clock.now();
      const { delivery } = claimed;
      if (problem === null) {
        await markDelivered(ctx.db, delivery.id, done);
        report.delivered++;
        return;
      }
      const dead = problem.permanent || delivery.attempts >= WEBHOOK_DELIVERY.maxAttempts;
      await markFailed(ctx.db, delivery.id, {
        lastError: problem.message.slice(0, 500),
        nextAttemptAt: addSeconds(done, webhookRetryDelaySeconds(delivery.attempts)),
        deadAt: dead ? done : null,
      });
      if (dead) report.dead++;
      else report.failed++;
      log?.warn(
        { deliveryId: delivery.id, attempts: delivery.attempts, dead, problem: problem.message },
        "webhook delivery failed",
      );
    }),
  );
  return report;
}

/** Runs delivery until the backlog is gone (a run claims less than a batch), at most `maxRuns` times. */
export async function drainWebhooks(
  ctx: AppContext,
  log?: Logger,
  options: { maxRuns?: number; timeoutMs?: number } = {},
): Promise<WebhookDeliveryReport> {
  const total: WebhookDeliveryReport = { delivered: 0, failed: 0, dead: 0 };
  for (let run = 0; run < (options.maxRuns ?? 20); run++) {
    const report = await deliverWebhooks(ctx, log, options);
    total.delivered += report.delivered;
    total.failed += report.failed;
    total.dead += report.dead;
    const handled = report.delivered + report.failed + report.dead;
    // A delivered event may unblock the next one of the same user: run again while anything was delivered.
    if (handled === 0 || (report.delivered === 0 && handled < WEBHOOK_DELIVERY.batchSize)) break;
  }
  return total;
}

/** POSTs the signed event; null on a 2xx answer, otherwise what went wrong (permanent: retrying cannot help). */
async function deliver(
  ctx: AppContext,
  claimed: ClaimedDelivery,
  timeoutMs: number,
): Promise<{ message: string; permanent: boolean } | null> {
  const { delivery } = claimed;
  if (!claimed.url) return { message: "the client has no webhook endpoint any more", permanent: true };
  let secret: string;
  try {
    secret = decrypt(ctx.config.masterKey, claimed.secretEncrypted, secretAad(delivery.clientId));
  } catch {
    return { message: "the signing secret cannot be decrypted with the master key", permanent: true };
  }
  const body = JSON.stringify(delivery.payload);
  const timestamp = Math.floor(ctx.clock.now().getTime() / 1000);
  try {
    const response = await fetch(claimed.url, {
      method: "POST",
      headers: webhookHeaders(secret, delivery.id, timestamp, body),
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel().catch(() => {});
    if (response.status >= 200 && response.status < 300) return null;
    return { message: `HTTP ${response.status}`, permanent: false };
  } catch (error) {
    const e = error as Error & { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } };
    if (e.name === "TimeoutError") return { message: "timeout", permanent: false };
    const message = e.cause?.code ?? e.cause?.errors?.[0]?.code ?? e.cause?.message ?? "network error";
    return { message, permanent: false };
  }
}

/** Runs delivery every `jobs.webhookIntervalSeconds` until stopped; returns a stop function that awaits a run. */
export function startWebhookWorker(ctx: AppContext, log: Logger): () => Promise<void> {
  let running: Promise<unknown> | null = null;
  const tick = () => {
    if (running) return;
    running = drainWebhooks(ctx, log)
      .catch((error) => log.error({ err: error }, "webhook delivery run failed"))
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(tick, ctx.config.jobs.backchannelIntervalSeconds * 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
