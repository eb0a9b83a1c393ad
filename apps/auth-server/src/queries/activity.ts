import { auditEvents, type Executor } from "@tessera/db";
import { and, desc, eq, inArray } from "drizzle-orm";

/** The latest `limit` audit events of the given kinds about a user, newest first (for the account page). */
export const recentSecurityEvents = (db: Executor, userId: string, events: string[], limit: number) =>
  db
    .select({
      id: auditEvents.id,
      at: auditEvents.at,
      event: auditEvents.event,
      outcome: auditEvents.outcome,
      ip: auditEvents.ip,
      userAgent: auditEvents.userAgent,
    })
    .from(auditEvents)
    .where(and(eq(auditEvents.userId, userId), inArray(auditEvents.event, events)))
    .orderBy(desc(auditEvents.id))
    .limit(limit);
