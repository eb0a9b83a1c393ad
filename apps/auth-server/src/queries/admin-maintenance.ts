import {
  accountThrottles,
  authorizationCodes,
  backchannelLogoutJobs,
  type Executor,
  emailTokens,
  federationFlows,
  ipSuspensions,
  mfaChallenges,
  passkeyChallenges,
  refreshTokens,
  rowsOf,
  sessions,
  webhookDeliveries,
} from "@tessera/db";
import { and, isNull, lt, or, type SQL, sql } from "drizzle-orm";

/** Any value; a sweeper batch holds this transaction-scoped advisory lock so only one instance sweeps at a time. */
const SWEEPER_LOCK_ID = 0x7e55e7c;

/** True when this transaction now holds the sweeper lock; false when another instance is sweeping. */
export async function tryLockSweeper(tx: Executor): Promise<boolean> {
  const result = await tx.execute<{ locked: boolean }>(
    sql`select pg_try_advisory_xact_lock(${SWEEPER_LOCK_ID}) as locked`,
  );
  return rowsOf<{ locked: boolean }>(result)[0]?.locked === true;
}

/** The tables the sweeper cleans, each with the condition that makes a row garbage as of `cutoff`. */
export const SWEEP_TARGETS = {
  /** Expired (absolute or idle) or revoked before the cutoff; their refresh tokens and codes go with them (cascade). */
  sessions: {
    table: sessions,
    id: sessions.id,
    garbage: (cutoff: Date): SQL | undefined =>
      or(lt(sessions.expiresAt, cutoff), lt(sessions.idleExpiresAt, cutoff), lt(sessions.revokedAt, cutoff)),
  },
  /**
   * Revoked before the cutoff. Rotated-but-live tokens stay while their session lives: they are what reuse detection
   * recognizes when a stolen old token comes back.
   */
  refresh_tokens: {
    table: refreshTokens,
    id: refreshTokens.id,
    garbage: (cutoff: Date) => lt(refreshTokens.revokedAt, cutoff),
  },
  authorization_codes: {
    table: authorizationCodes,
    id: authorizationCodes.id,
    garbage: (cutoff: Date) => lt(authorizationCodes.expiresAt, cutoff),
  },
  email_tokens: {
    table: emailTokens,
    id: emailTokens.id,
    garbage: (cutoff: Date) => or(lt(emailTokens.expiresAt, cutoff), lt(emailTokens.usedAt, cutoff)),
  },
  mfa_challenges: {
    table: mfaChallenges,
    id: mfaChallenges.id,
    garbage: (cutoff: Date) => or(lt(mfaChallenges.expiresAt, cutoff), lt(mfaChallenges.usedAt, cutoff)),
  },
  /** WebAuthn ceremonies (passkeys): expired or used before the cutoff. */
  passkey_challenges: {
    table: passkeyChallenges,
    id: passkeyChallenges.id,
    garbage: (cutoff: Date) => or(lt(passkeyChallenges.expiresAt, cutoff), lt(passkeyChallenges.usedAt, cutoff)),
  },
  /**
   * Upstream sign-in ceremonies (#15: upstream redirects, pending links, emailed link proofs, federated first factors
   * waiting for the code step): expired or used before the cutoff. Each lives minutes; only the sweeper removes them.
   */
  federation_flows: {
    table: federationFlows,
    id: federationFlows.id,
    garbage: (cutoff: Date) => or(lt(federationFlows.expiresAt, cutoff), lt(federationFlows.usedAt, cutoff)),
  },
  backchannel_logout_jobs: {
    table: backchannelLogoutJobs,
    id: backchannelLogoutJobs.id,
    garbage: (cutoff: Date) =>
      or(lt(backchannelLogoutJobs.deliveredAt, cutoff), lt(backchannelLogoutJobs.abandonedAt, cutoff)),
  },
  /** Webhooks (#16) delivered before the cutoff; dead ones stay listed for admins until redelivered. */
  webhook_deliveries: {
    table: webhookDeliveries,
    id: webhookDeliveries.id,
    garbage: (cutoff: Date) => lt(webhookDeliveries.deliveredAt, cutoff),
  },
  /** Failed sign-in counters whose last failure and lock both ended before the cutoff (long forgotten anyway). */
  account_throttles: {
    table: accountThrottles,
    id: accountThrottles.key,
    garbage: (cutoff: Date) =>
      and(
        lt(accountThrottles.lastFailureAt, cutoff),
        or(isNull(accountThrottles.lockedUntil), lt(accountThrottles.lockedUntil, cutoff)),
      ),
  },
  /** IP counters whose window and suspension both ended before the cutoff. */
  ip_suspensions: {
    table: ipSuspensions,
    id: ipSuspensions.ip,
    garbage: (cutoff: Date) =>
      and(
        lt(ipSuspensions.windowStartedAt, cutoff),
        or(isNull(ipSuspensions.suspendedUntil), lt(ipSuspensions.suspendedUntil, cutoff)),
      ),
  },
} as const;

export type SweepTarget = keyof typeof SWEEP_TARGETS;

/**
 * Deletes at most `limit` garbage rows of one table; returns how many. `id = any(array(…))` rather than
 * `id in (…)`: the batch's ids are computed first and each row is then found by its primary key, where `in`
 * let PostgreSQL plan a hash semi-join that reads the whole table for every batch (bench/explain.ts).
 */
export async function deleteGarbageBatch(
  db: Executor,
  target: SweepTarget,
  cutoff: Date,
  limit: number,
): Promise<number> {
  const { table, id, garbage } = SWEEP_TARGETS[target];
  const batch = db.select({ id }).from(table).where(garbage(cutoff)).limit(limit);
  const deleted = await db.delete(table).where(sql`${id} = any(array(${batch}))`).returning({ id });
  return deleted.length;
}
