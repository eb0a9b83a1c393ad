import { backchannelLogoutJobs, clients, type Executor } from "@tessera/db";
import { and, asc, eq, inArray, isNull, lte, or, sql } from "drizzle-orm";

export type BackchannelJobRow = typeof backchannelLogoutJobs.$inferSelect;

export interface ClaimedJob {
  job: BackchannelJobRow;
  /** The client's public client_id (the logout token's audience) and its ID-token algorithm. */
  clientId: string;
  alg: "RS256" | "ES256" | "EdDSA";
}

/**
 * Claims up to `limit` due jobs: rows are picked with FOR UPDATE SKIP LOCKED (instances never pick the same row) and
 * leased by moving next_attempt_at to `leaseUntil` and counting the attempt, all in one statement. If the process dies
 * while delivering, the lease runs out and another run picks the job up again: nothing is lost.
 */
export async function claimDueJobs(db: Executor, now: Date, leaseUntil: Date, limit: number): Promise<ClaimedJob[]> {
  const due = db
    .select({ id: backchannelLogoutJobs.id })
    .from(backchannelLogoutJobs)
    .where(
      and(
        isNull(backchannelLogoutJobs.deliveredAt),
        isNull(backchannelLogoutJobs.abandonedAt),
        // A job never attempted is due at once, whatever clock stamped its row (the database's or the app's).
        or(eq(backchannelLogoutJobs.attempts, 0), lte(backchannelLogoutJobs.nextAttemptAt, now)),
      ),
    )
    .orderBy(asc(backchannelLogoutJobs.nextAttemptAt))
    .limit(limit)
    .for("update", { skipLocked: true });
  const claimed = await db
    .update(backchannelLogoutJobs)
    .set({ nextAttemptAt: leaseUntil, attempts: sql`${backchannelLogoutJobs.attempts} + 1` })
    .where(inArray(backchannelLogoutJobs.id, due))
    .returning();
  if (claimed.length === 0) return [];
  const owners = await db
    .select({ id: clients.id, clientId: clients.clientId, alg: clients.idTokenSignedResponseAlg })
    .from(clients)
    .where(
      inArray(
        clients.id,
        claimed.map((j) => j.clientId),
      ),
    );
  const byId = new Map(owners.map((o) => [o.id, o]));
  return claimed.flatMap((job) => {
    const owner = byId.get(job.clientId);
    return owner ? [{ job, clientId: owner.clientId, alg: owner.alg }] : [];
  });
}

export async function markJobDelivered(db: Executor, id: string, now: Date): Promise<void> {
  await db
    .update(backchannelLogoutJobs)
    .set({ deliveredAt: now, lastError: null })
    .where(eq(backchannelLogoutJobs.id, id));
}

export async function markJobFailed(
  db: Executor,
  id: string,
  values: { lastError: string; nextAttemptAt: Date; abandonedAt: Date | null },
): Promise<void> {
  // A stale attempt (its lease ran out and another instance delivered the job meanwhile) must not undo the delivery.
  await db
    .update(backchannelLogoutJobs)
    .set(values)
    .where(and(eq(backchannelLogoutJobs.id, id), isNull(backchannelLogoutJobs.deliveredAt)));
}

export async function listJobsForSession(db: Executor, sessionId: string): Promise<BackchannelJobRow[]> {
  return db.select().from(backchannelLogoutJobs).where(eq(backchannelLogoutJobs.sessionId, sessionId));
}
