import type { AppContext, Logger } from "../../context.ts";
import { addSeconds } from "../clock.ts";

/**
 * The one durable-outbox delivery loop, shared by back-channel logout (jobs/backchannel.ts) and webhooks
 * (jobs/webhooks.ts). Rows are written in the transaction of the change they announce; a run:
 *
 * 1. claims due rows in ONE statement that locks them with FOR UPDATE SKIP LOCKED and leases them (moves their next
 *    attempt to now + lease and counts the attempt). The lease lives in the database row, not in the process: a
 *    claim whose process died (crash, deploy, kill -9) is simply due again once its lease has passed, and any
 *    instance picks it up; two instances never hold the same row at once.
 * 2. delivers the claimed rows in parallel (each with its own timeout);
 * 3. records each outcome: delivered, or failed with the next attempt after an exponential backoff, or — after
 *    `maxAttempts` or a permanent problem — ended (the queue's dead letter: abandoned logouts, dead webhooks).
 *
 * Draining repeats runs while they are full or delivered something (a delivery may make the next row of the same
 * user due, for queues that keep per-user order), at most `maxRuns` times.
 */
export interface OutboxPolicy {
  /** Rows claimed per run. */
  batchSize: number;
  /** A claimed row is not picked again before this; if its process dies mid-delivery, it is due again after it. */
  leaseSeconds: number;
  /** Per-request timeout; a slow receiver must not hold up the others. */
  timeoutMs: number;
  /** After this many failed attempts the row is ended (dead letter). */
  maxAttempts: number;
}

/** What went wrong with one attempt; `permanent`: retrying cannot help, end the row now. */
export interface OutboxProblem {
  message: string;
  permanent: boolean;
}

export interface OutboxQueue<Claimed> {
  /** For logs: "back-channel logout", "webhook". */
  name: string;
  policy: OutboxPolicy;
  claim(now: Date, leaseUntil: Date, limit: number): Promise<Claimed[]>;
  /** The attempts counted so far, this one included (counted by the claim). */
  attempts(claimed: Claimed): number;
  deliver(claimed: Claimed, timeoutMs: number): Promise<OutboxProblem | null>;
  markDelivered(claimed: Claimed, at: Date): Promise<void>;
  /** `endedAt` set: no further attempt (dead letter); otherwise retried at `nextAttemptAt`. */
  markFailed(claimed: Claimed, values: { lastError: string; nextAttemptAt: Date; endedAt: Date | null }): Promise<void>;
  /** The delay before attempt `attempts + 1`, after `attempts` failures. */
  retryDelaySeconds(attempts: number): number;
  /** Identifying fields for the failure log (ids, never secrets). */
  logFields(claimed: Claimed): Record<string, unknown>;
}

export interface OutboxReport {
  delivered: number;
  failed: number;
  /** Ended for good this run (abandoned, dead). */
  ended: number;
}

/** One run: claims due rows and delivers them in parallel. Safe to run on every instance at once. */
export async function runOutbox<C>(
  ctx: AppContext,
  queue: OutboxQueue<C>,
  log?: Logger,
  options: { timeoutMs?: number } = {},
): Promise<OutboxReport> {
  const now = ctx.clock.now();
  const { policy } = queue;
  const claimed = await queue.claim(now, addSeconds(now, policy.leaseSeconds), policy.batchSize);
  const report: OutboxReport = { delivered: 0, failed: 0, ended: 0 };
  await Promise.all(
    claimed.map(async (row) => {
      const problem = await queue.deliver(row, options.timeoutMs ?? policy.timeoutMs);
      const done = ctx.clock.now();
      if (problem === null) {
        await queue.markDelivered(row, done);
        report.delivered++;
        return;
      }
      const attempts = queue.attempts(row);
      const end = problem.permanent || attempts >= policy.maxAttempts;
      await queue.markFailed(row, {
        lastError: problem.message.slice(0, 500),
        nextAttemptAt: addSeconds(done, queue.retryDelaySeconds(attempts)),
        endedAt: end ? done : null,
      });
      if (end) report.ended++;
      else report.failed++;
      log?.warn(
        { ...queue.logFields(row), attempts, ended: end, problem: problem.message },
        `${queue.name} delivery failed`,
      );
    }),
  );
  return report;
}

/** Runs until the backlog is gone, at most `maxRuns` times (default 20); returns the summed report. */
export async function drainOutbox<C>(
  ctx: AppContext,
  queue: OutboxQueue<C>,
  log?: Logger,
  options: { maxRuns?: number; timeoutMs?: number } = {},
): Promise<OutboxReport> {
  const total: OutboxReport = { delivered: 0, failed: 0, ended: 0 };
  for (let run = 0; run < (options.maxRuns ?? 20); run++) {
    const report = await runOutbox(ctx, queue, log, options);
    total.delivered += report.delivered;
    total.failed += report.failed;
    total.ended += report.ended;
    const handled = report.delivered + report.failed + report.ended;
    if (handled === 0 || (report.delivered === 0 && handled < queue.policy.batchSize)) break;
  }
  return total;
}

/**
 * Calls `run` every `intervalSeconds` until stopped. Runs never overlap within one process; several instances may
 * run at once (the claim's SKIP LOCKED keeps them apart). Returns a stop function that waits for a run in progress.
 */
export function startOutboxWorker(
  name: string,
  intervalSeconds: number,
  run: () => Promise<unknown>,
  log: Logger,
): () => Promise<void> {
  let running: Promise<unknown> | null = null;
  const tick = () => {
    if (running) return;
    running = run()
      .catch((error) => log.error({ err: error }, `${name} run failed`))
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(tick, intervalSeconds * 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/**
 * POSTs one outbox message; null on a 2xx answer, otherwise a short description (never the body). Redirects are not
 * followed (a receiver URL is registered exactly); the response body is discarded to free the connection.
 */
export async function postOutboxMessage(
  url: string,
  init: { headers: Record<string, string>; body: string },
  timeoutMs: number,
): Promise<string | null> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: init.headers,
      body: init.body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel().catch(() => {});
    return response.status >= 200 && response.status < 300 ? null : `HTTP ${response.status}`;
  } catch (error) {
    const e = error as Error & { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } };
    if (e.name === "TimeoutError") return "timeout";
    return e.cause?.code ?? e.cause?.errors?.[0]?.code ?? e.cause?.message ?? "network error";
  }
}
