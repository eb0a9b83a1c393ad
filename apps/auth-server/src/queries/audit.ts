import { auditEvents, type Executor } from "@tessera/db";

export type AuditRow = typeof auditEvents.$inferInsert;

export async function insertAuditEvent(db: Executor, row: AuditRow): Promise<void> {
  await db.insert(auditEvents).values(row);
}
