import { auditEvents, type Executor } from "@tessera/db";
import { and, asc, inArray, isNotNull, lt, or, sql } from "drizzle-orm";

/** An email address anywhere in an audit row's details (admin before/after views, upstream answers). */
const EMAIL = "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}";

/**
 * Privacy (#16): strips personal data from up to `limit` audit events older than `cutoff` — the IP and user agent
 * columns, an `ip` in the details, and every email address in the details (replaced by `redacted@invalid`, which
 * keeps the JSON valid). The event, outcome, time and ids stay. Returns how many rows changed; rows already clean are
 * not touched again.
 */
export async function scrubAuditPiiBatch(db: Executor, cutoff: Date, limit: number): Promise<number> {
  const batch = db
    .select({ id: auditEvents.id })
    .from(auditEvents)
    .where(
      and(
        lt(auditEvents.at, cutoff),
        or(
          isNotNull(auditEvents.ip),
          isNotNull(auditEvents.userAgent),
          sql`(${auditEvents.details} -> 'ip') is not null`,
          sql`${auditEvents.details}::text ~ ${EMAIL}`,
        ),
      ),
    )
    .orderBy(asc(auditEvents.id))
    .limit(limit);
  const changed = await db
    .update(auditEvents)
    .set({
      ip: null,
      userAgent: null,
      details: sql`case when ${auditEvents.details} is null then null
        else regexp_replace((${auditEvents.details} - 'ip')::text, ${EMAIL}, 'redacted@invalid', 'g')::jsonb end`,
    })
    .where(inArray(auditEvents.id, batch))
    .returning({ id: auditEvents.id });
  return changed.length;
}
