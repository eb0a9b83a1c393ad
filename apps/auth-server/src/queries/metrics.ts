import { backchannelLogoutJobs, type Executor, sessions, webhookDeliveries } from "@tessera/db";
import { and, count, gt, isNotNull, isNull, min } from "drizzle-orm";

export interface MetricsSnapshot {
  activeSessions: number;
  backchannelPending: number;
  backchannelOldest: Date | null;
  webhookPending: number;
  webhookOldest: Date | null;
  webhookDead: number;
}

/** The gauges read on a metrics scrape: aggregate queries, each on an indexed or small table. */
export async function countActiveSessions(db: Executor, now: Date): Promise<MetricsSnapshot> {
  const [active] = await db
    .select({ n: count() })
    .from(sessions)
    .where(and(isNull(sessions.revokedAt), gt(sessions.expiresAt, now), gt(sessions.idleExpiresAt, now)));
  const [queue] = await db
    .select({ n: count(), oldest: min(backchannelLogoutJobs.createdAt) })
    .from(backchannelLogoutJobs)
    .where(and(isNull(backchannelLogoutJobs.deliveredAt), isNull(backchannelLogoutJobs.abandonedAt)));
  const [webhooks] = await db
    .select({ n: count(), oldest: min(webhookDeliveries.createdAt) })
    .from(webhookDeliveries)
    .where(and(isNull(webhookDeliveries.deliveredAt), isNull(webhookDeliveries.deadAt)));
  const [dead] = await db.select({ n: count() }).from(webhookDeliveries).where(isNotNull(webhookDeliveries.deadAt));
  return {
    activeSessions: active?.n ?? 0,
    backchannelPending: queue?.n ?? 0,
    backchannelOldest: queue?.oldest ? new Date(queue.oldest) : null,
    webhookPending: webhooks?.n ?? 0,
    webhookOldest: webhooks?.oldest ? new Date(webhooks.oldest) : null,
    webhookDead: dead?.n ?? 0,
  };
}
