import { auditEvents, type Executor } from "@tessera/db";
import { and, desc, eq, gte, like, lt, lte, type SQL } from "drizzle-orm";

export type AuditEventRow = typeof auditEvents.$inferSelect;

/** What the audit log can be filtered by (#14). Every field is optional; all given ones must match. */
export interface AuditFilter {
  userId?: string | undefined;
  clientId?: string | undefined;
  /** An exact event name, or a prefix when it ends in `*` (`user.*`). */
  event?: string | undefined;
  ip?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

const escapeLike = (value: string) => value.replace(/[\\%_]/g, (c) => `\\${c}`);

function conditions(filter: AuditFilter, beforeId: number | undefined): SQL | undefined {
  const parts: SQL[] = [];
  if (filter.userId) parts.push(eq(auditEvents.userId, filter.userId));
  if (filter.clientId) parts.push(eq(auditEvents.clientId, filter.clientId));
  if (filter.event) {
    parts.push(
      filter.event.endsWith("*")
        ? like(auditEvents.event, `${escapeLike(filter.event.slice(0, -1))}%`)
        : eq(auditEvents.event, filter.event),
    );
  }
  if (filter.ip) parts.push(eq(auditEvents.ip, filter.ip));
  if (filter.from) parts.push(gte(auditEvents.at, filter.from));
  if (filter.to) parts.push(lte(auditEvents.at, filter.to));
  if (beforeId !== undefined) parts.push(lt(auditEvents.id, beforeId));
  return parts.length ? and(...parts) : undefined;
}

/**
 * One page of matching events, newest first, strictly older than `beforeId` (keyset paging on the identity key: a
 * page costs the same at any depth and rows written meanwhile never shift it).
 */
export async function selectAuditEvents(
  db: Executor,
  filter: AuditFilter,
  beforeId: number | undefined,
  limit: number,
): Promise<AuditEventRow[]> {
  return db.select().from(auditEvents).where(conditions(filter, beforeId)).orderBy(desc(auditEvents.id)).limit(limit);
}
