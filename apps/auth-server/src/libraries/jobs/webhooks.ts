import type { AppContext, Logger } from "../../context.ts";
import {
  type ClaimedDelivery,
  claimDueDeliveries,
  expandFanoutBatch,
  markDelivered,
  markFailed,
} from "../../queries/webhooks.ts";
import { decrypt } from "../crypto.ts";
import { secretAad } from "../webhooks/endpoints.ts";
import { webhookHeaders } from "../webhooks/signing.ts";
import {
  drainOutbox,
  type OutboxProblem,
  type OutboxQueue,
  type OutboxReport,
  postOutboxMessage,
  runOutbox,
  startOutboxWorker,
} from "./outbox.ts";

/**
 * Webhook delivery (issue #16), modelled on the back-channel logout queue: rows of webhook_deliveries are written in
 * the transaction of the change they announce; the worker claims due rows (FOR UPDATE SKIP LOCKED, leased), POSTs the
 * signed event and records the outcome. Failures are retried with exponential backoff and jitter; after
 * `maxAttempts` the delivery is dead (listed for admins, who may redeliver it). Per client and user only the oldest
 * pending delivery is ever claimed, so a receiver sees a user's events in order. The row id is the `webhook-id` on
 * every attempt, across retries and restarts, so a receiver that deduplicates on it acts exactly once. The loop
 * itself (claim, lease, backoff, dead letter, drain, worker) is jobs/outbox.ts, shared with back-channel logout.
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

/** The webhook queue for the shared outbox loop (jobs/outbox.ts). */
function webhookQueue(ctx: AppContext): OutboxQueue<ClaimedDelivery> {
  return {
    name: "webhook",
    policy: WEBHOOK_DELIVERY,
    claim: (now, leaseUntil, limit) => claimDueDeliveries(ctx.db, now, leaseUntil, limit),
    attempts: (claimed) => claimed.delivery.attempts,
    deliver: (claimed, timeoutMs) => deliver(ctx, claimed, timeoutMs),
    markDelivered: (claimed, at) => markDelivered(ctx.db, claimed.delivery.id, at),
    markFailed: (claimed, { lastError, nextAttemptAt, endedAt }) =>
      markFailed(ctx.db, claimed.delivery.id, { lastError, nextAttemptAt, deadAt: endedAt }),
    retryDelaySeconds: (attempts) => webhookRetryDelaySeconds(attempts),
    logFields: (claimed) => ({ deliveryId: claimed.delivery.id }),
  };
}

const asWebhookReport = (r: OutboxReport): WebhookDeliveryReport => ({
  delivered: r.delivered,
  failed: r.failed,
  dead: r.ended,
});

/** One run: claims due deliveries and POSTs them in parallel. Safe to run on every instance at once. */
export async function deliverWebhooks(
  ctx: AppContext,
  log?: Logger,
  options: { timeoutMs?: number } = {},
): Promise<WebhookDeliveryReport> {
  return asWebhookReport(await runOutbox(ctx, webhookQueue(ctx), log, options));
}

/** Holders per fan-out batch: one transaction inserts at most this many holders' deliveries. */
export const FANOUT_BATCH_SIZE = 500;

/**
 * Queues the deliveries of pending fan-outs (a catalog-wide role change, queries/webhooks.ts insertRoleFanouts), one
 * batch of `batchSize` holders per transaction, at most `maxBatches` batches. Each batch's deliveries commit with
 * the fan-out's progress, so a crash mid-way repeats no batch and loses none; SKIP LOCKED keeps instances apart.
 * Returns the holders handled.
 */
export async function expandWebhookFanouts(
  ctx: Pick<AppContext, "db">,
  options: { batchSize?: number; maxBatches?: number } = {},
): Promise<number> {
  let handled = 0;
  for (let batch = 0; batch < (options.maxBatches ?? 200); batch++) {
    const n = await ctx.db.transaction((tx) => expandFanoutBatch(tx, options.batchSize ?? FANOUT_BATCH_SIZE));
    if (n === 0) break;
    handled += n;
  }
  return handled;
}

/** Expands pending fan-outs, then runs delivery until the backlog is gone, at most `maxRuns` times. */
export async function drainWebhooks(
  ctx: AppContext,
  log?: Logger,
  options: { maxRuns?: number; timeoutMs?: number } = {},
): Promise<WebhookDeliveryReport> {
  // A failed expansion (retried next run) must not hold up the deliveries already queued.
  await expandWebhookFanouts(ctx).catch((error: unknown) => log?.error({ err: error }, "webhook fan-out failed"));
  return asWebhookReport(await drainOutbox(ctx, webhookQueue(ctx), log, options));
}

/** POSTs the signed event; null on a 2xx answer, otherwise what went wrong (permanent: retrying cannot help). */
async function deliver(ctx: AppContext, claimed: ClaimedDelivery, timeoutMs: number): Promise<OutboxProblem | null> {
  const { delivery } = claimed;
  if (!claimed.url) return { message: "the client has no webhook endpoint any more", permanent: true };
  const now = ctx.clock.now();
  const secrets: string[] = [];
  try {
    secrets.push(decrypt(ctx.config.masterKey, claimed.secretEncrypted, secretAad(delivery.clientId)));
    // The rotation overlap: the previous secret signs too, so a receiver not yet updated still verifies.
    if (claimed.previousSecretEncrypted && claimed.previousSecretExpiresAt && claimed.previousSecretExpiresAt > now) {
      secrets.push(decrypt(ctx.config.masterKey, claimed.previousSecretEncrypted, secretAad(delivery.clientId)));
    }
  } catch {
    return { message: "the signing secret cannot be decrypted with the master key", permanent: true };
  }
  const body = JSON.stringify(delivery.payload);
  const timestamp = Math.floor(now.getTime() / 1000);
  const problem = await postOutboxMessage(
    claimed.url,
    { headers: webhookHeaders(secrets, delivery.id, timestamp, body), body },
    timeoutMs,
  );
  return problem === null ? null : { message: problem, permanent: false };
}

/** Runs delivery every `jobs.backchannelIntervalSeconds` until stopped (jobs/outbox.ts startOutboxWorker). */
export function startWebhookWorker(ctx: AppContext, log: Logger): () => Promise<void> {
  return startOutboxWorker(
    "webhook delivery",
    ctx.config.jobs.backchannelIntervalSeconds,
    () => drainWebhooks(ctx, log),
    log,
  );
}
