import { auditEvents, type Executor } from "@tessera/db";
import { sql } from "drizzle-orm";
import { prepared } from "./prepared.ts";

export type AuditRow = typeof auditEvents.$inferInsert;

const column = (name: string) => sql.placeholder(name);

/**
 * Every audit row (but one with an explicit time) goes through one of two prepared statements (with and without
 * `details`: a jsonb placeholder given null would store the JSON value null, not SQL NULL).
 */
export async function insertAuditEvent(db: Executor, row: AuditRow): Promise<void> {
  if (row.at !== undefined) {
    await db.insert(auditEvents).values(row);
    return;
  }
  const values = {
    event: row.event,
    outcome: row.outcome,
    userId: row.userId ?? null,
    actorId: row.actorId ?? null,
    clientId: row.clientId ?? null,
    sessionId: row.sessionId ?? null,
    ip: row.ip ?? null,
    userAgent: row.userAgent ?? null,
  };
  const base = {
    event: column("event"),
    outcome: column("outcome"),
    userId: column("userId"),
    actorId: column("actorId"),
    clientId: column("clientId"),
    sessionId: column("sessionId"),
    ip: column("ip"),
    userAgent: column("userAgent"),
  };
  if (row.details == null) {
    await prepared(db, "audit_insert", (d) => d.insert(auditEvents).values(base).prepare("audit_insert")).execute(
      values,
    );
    return;
  }
  await prepared(db, "audit_insert_details", (d) =>
    d
      .insert(auditEvents)
      .values({ ...base, details: column("details") })
      .prepare("audit_insert_details"),
  ).execute({ ...values, details: row.details });
}
