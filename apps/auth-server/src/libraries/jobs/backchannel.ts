import { randomUUID } from "node:crypto";
import type { AppContext, Logger } from "../../context.ts";
import { type ClaimedJob, claimDueJobs, markJobDelivered, markJobFailed } from "../../queries/backchannel.ts";
import { addSeconds } from "../clock.ts";
import { signJwt } from "../keys/index.ts";

/**
 * Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0). Jobs are rows in backchannel_logout_jobs,
 * written in the same transaction that ends a session, so a crash or restart loses no notification: the worker claims
 * due rows (FOR UPDATE SKIP LOCKED, so instances never deliver the same job at once), POSTs a signed logout token to
 * the client, and records the outcome. Failures are retried with exponential backoff up to a cap, then abandoned.
 */
export const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";

export const DELIVERY = {
  /** Jobs claimed per run. */
  batchSize: 50,
  /** A claimed job is not picked again before this; if the process dies mid-delivery, it is retried after it. */
  leaseSeconds: 60,
  /** Per-request timeout; a slow client must not hold up the others. */
  timeoutMs: 5000,
  /** Delay after the first failure; doubled on each further failure, up to maxDelaySeconds. */
  baseDelaySeconds: 10,
  maxDelaySeconds: 3600,
  /**
   * After this many failed attempts the job is abandoned: about 3.4 hours after the first with the delays above
   * (10 s doubling to the 1 h cap). Past a few minutes a notification matters little anyway: the client's access JWTs
   * have expired by then and its refresh fails at Tessera, which signs the user out of it.
   */
  maxAttempts: 12,
  /** Logout tokens live 2 minutes: long enough for clock skew, short enough that a captured one is soon useless. */
  tokenTtlSeconds: 120,
} as const;

/** The delay before attempt `attempts + 1`, after `attempts` failures. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(DELIVERY.baseDelaySeconds * 2 ** Math.max(0, attempts - 1), DELIVERY.maxDelaySeconds);
}

/** The logout token (Back-Channel Logout 1.0 section 2.4): no nonce, typ logout+jwt, the session id. */
export function logoutToken(ctx: AppContext, claimed: ClaimedJob): Promise<string> {
  return signJwt(
    ctx,
    {
      aud: claimed.clientId,
      sub: claimed.job.userId,
      sid: claimed.job.sessionId,
      jti: randomUUID(),
      events: { [BACKCHANNEL_EVENT]: {} },
    },
    { typ: "logout+jwt", alg: claimed.alg, expiresInSeconds: DELIVERY.tokenTtlSeconds },
  );
}

export interface DeliveryReport {
  delivered: number;
  failed: number;
  abandoned: number;
}

/** One delivery run: claims due jobs and delivers them in parallel. Safe to run on every instance at once. */
export async function deliverBackchannelLogouts(
  ctx: AppContext,
  log?: Logger,
  options: { timeoutMs?: number } = {},
): Promise<DeliveryReport> {
  const now = ctx.clock.now();
  const claimed = await claimDueJobs(ctx.db, now, addSeconds(now, DELIVERY.leaseSeconds), DELIVERY.batchSize);
  const report: DeliveryReport = { delivered: 0, failed: 0, abandoned: 0 };
  await Promise.all(
    claimed.map(async (claimed) => {
      const problem = await deliver(ctx, claimed, options.timeoutMs ?? DELIVERY.timeoutMs);
      const done = ctx.clock.now();
      if (problem === null) {
        await markJobDelivered(ctx.db, claimed.job.id, done);
        report.delivered++;
        return;
      }
      // `attempts` was counted when the job was claimed.
      const abandon = claimed.job.attempts >= DELIVERY.maxAttempts;
      await markJobFailed(ctx.db, claimed.job.id, {
        lastError: problem.slice(0, 500),
        nextAttemptAt: addSeconds(done, retryDelaySeconds(claimed.job.attempts)),
        abandonedAt: abandon ? done : null,
      });
      if (abandon) report.abandoned++;
      else report.failed++;
      log?.warn(
        {
          jobId: claimed.job.id,
          clientId: claimed.clientId,
          attempts: claimed.job.attempts,
          abandoned: abandon,
          problem,
        },
        "back-channel logout delivery failed",
      );
    }),
  );
  return report;
}

/**
 * Runs delivery until a run claims less than a full batch (the backlog is gone), at most `maxRuns` times, so a burst
 * of logouts (an account disabled with many sessions, a reuse storm) is delivered within one worker tick instead of
 * one batch per tick. Returns the summed report.
 */
export async function drainBackchannelLogouts(
  ctx: AppContext,
  log?: Logger,
  options: { maxRuns?: number; timeoutMs?: number } = {},
): Promise<DeliveryReport> {
  const total: DeliveryReport = { delivered: 0, failed: 0, abandoned: 0 };
  for (let run = 0; run < (options.maxRuns ?? 20); run++) {
    const report = await deliverBackchannelLogouts(ctx, log, options);
    total.delivered += report.delivered;
    total.failed += report.failed;
    total.abandoned += report.abandoned;
    if (report.delivered + report.failed + report.abandoned < DELIVERY.batchSize) break;
  }
  return total;
}

/** POSTs the logout token; null on a 2xx answer, otherwise a short description of what went wrong. */
async function deliver(ctx: AppContext, claimed: ClaimedJob, timeoutMs: number): Promise<string | null> {
  try {
    const token = await logoutToken(ctx, claimed);
    const response = await fetch(claimed.job.logoutUri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({ logout_token: token }).toString(),
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The body is not needed; release the connection.
    await response.body?.cancel().catch(() => {});
    return response.status >= 200 && response.status < 300 ? null : `HTTP ${response.status}`;
  } catch (error) {
    const e = error as Error & { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } };
    if (e.name === "TimeoutError") return "timeout";
    return e.cause?.code ?? e.cause?.errors?.[0]?.code ?? e.cause?.message ?? "network error";
  }
}

/**
 * Runs delivery every `jobs.backchannelIntervalSeconds` until stopped. Runs never overlap within one process; several
 * instances may run at once (SKIP LOCKED keeps them apart). Returns a stop function that waits for a run in progress.
 */
export function startBackchannelWorker(ctx: AppContext, log: Logger): () => Promise<void> {
  let running: Promise<unknown> | null = null;
  const tick = () => {
    if (running) return;
    running = drainBackchannelLogouts(ctx, log)
      .catch((error) => log.error({ err: error }, "back-channel logout run failed"))
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
