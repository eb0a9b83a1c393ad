import { backchannelLogoutJobs, type Executor, sessions } from "@tessera/db";
import { and, count, gt, isNull, min } from "drizzle-orm";

export interface MetricsSnapshot {
  activeSessions: number;
  backchannelPending: number;
  backchannelOldest: Date | null;
}

/** The gauges read on a metrics scrape: two aggregate queries, each on an indexed or small table. */
export async function countActiveSessions(db: Executor, now: Date): Promise<MetricsSnapshot> {
  const [active] = await db
    .select({ n: count() })
    .from(sessions)
    .where(and(isNull(sessions.revokedAt), gt(sessions.expiresAt, now), gt(sessions.idleExpiresAt, now)));
  const [queue] = await db
    .select({ n: count(), oldest: min(backchannelLogoutJobs.createdAt) })
    .from(backchannelLogoutJobs)
    .where(and(isNull(backchannelLogoutJobs.deliveredAt), isNull(backchannelLogoutJobs.abandonedAt)));
  return {
    activeSessions: active?.n ?? 0,
    backchannelPending: queue?.n ?? 0,
    backchannelOldest: queue?.oldest ? new Date(queue.oldest) : null,
  };
}
