import { randomUUID } from "node:crypto";
import type { AppContext, Logger } from "../../context.ts";
import { type ClaimedJob, claimDueJobs, markJobDelivered, markJobFailed } from "../../queries/backchannel.ts";
import { signJwt } from "../keys/index.ts";
import {
  drainOutbox,
  type OutboxQueue,
  type OutboxReport,
  postOutboxMessage,
  runOutbox,
  startOutboxWorker,
} from "./outbox.ts";

/**
 * Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0). Jobs are rows in backchannel_logout_jobs,
 * written in the same transaction that ends a session, so a crash or restart loses no notification: the worker claims
 * due rows (FOR UPDATE SKIP LOCKED, so instances never deliver the same job at once), POSTs a signed logout token to
 * the client, and records the outcome. Failures are retried with exponential backoff up to a cap, then abandoned.
 * The loop itself (claim, lease, backoff, dead letter, drain, worker) is jobs/outbox.ts, shared with webhooks.
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

/** The back-channel logout queue for the shared outbox loop (jobs/outbox.ts). */
function backchannelQueue(ctx: AppContext): OutboxQueue<ClaimedJob> {
  return {
    name: "back-channel logout",
    policy: DELIVERY,
    claim: (now, leaseUntil, limit) => claimDueJobs(ctx.db, now, leaseUntil, limit),
    attempts: (claimed) => claimed.job.attempts,
    deliver: async (claimed, timeoutMs) => {
      const problem = await deliver(ctx, claimed, timeoutMs);
      return problem === null ? null : { message: problem, permanent: false };
    },
    markDelivered: (claimed, at) => markJobDelivered(ctx.db, claimed.job.id, at),
    markFailed: (claimed, { lastError, nextAttemptAt, endedAt }) =>
      markJobFailed(ctx.db, claimed.job.id, { lastError, nextAttemptAt, abandonedAt: endedAt }),
    retryDelaySeconds,
    logFields: (claimed) => ({ jobId: claimed.job.id, clientId: claimed.clientId }),
  };
}

const asDeliveryReport = (r: OutboxReport): DeliveryReport => ({
  delivered: r.delivered,
  failed: r.failed,
  abandoned: r.ended,
});

/** One delivery run: claims due jobs and delivers them in parallel. Safe to run on every instance at once. */
export async function deliverBackchannelLogouts(
  ctx: AppContext,
  log?: Logger,
  options: { timeoutMs?: number } = {},
): Promise<DeliveryReport> {
  return asDeliveryReport(await runOutbox(ctx, backchannelQueue(ctx), log, options));
}

/**
 * Runs delivery until the backlog is gone, at most `maxRuns` times, so a burst of logouts (an account disabled with
 * many sessions, a reuse storm) is delivered within one worker tick instead of one batch per tick. Returns the summed
 * report.
 */
export async function drainBackchannelLogouts(
  ctx: AppContext,
  log?: Logger,
  options: { maxRuns?: number; timeoutMs?: number } = {},
): Promise<DeliveryReport> {
  return asDeliveryReport(await drainOutbox(ctx, backchannelQueue(ctx), log, options));
}

/** POSTs the logout token; null on a 2xx answer, otherwise a short description of what went wrong. */
async function deliver(ctx: AppContext, claimed: ClaimedJob, timeoutMs: number): Promise<string | null> {
  let token: string;
  try {
    token = await logoutToken(ctx, claimed);
  } catch (error) {
    return (error as Error).message || "cannot sign the logout token";
  }
  return postOutboxMessage(
    claimed.job.logoutUri,
    {
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({ logout_token: token }).toString(),
    },
    timeoutMs,
  );
}

/** Runs delivery every `jobs.backchannelIntervalSeconds` until stopped (jobs/outbox.ts startOutboxWorker). */
export function startBackchannelWorker(ctx: AppContext, log: Logger): () => Promise<void> {
  return startOutboxWorker(
    "back-channel logout",
    ctx.config.jobs.backchannelIntervalSeconds,
    () => drainBackchannelLogouts(ctx, log),
    log,
  );
}
