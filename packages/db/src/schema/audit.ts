import { bigint, index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * Append-only record of authentication and admin events. `userId` has no foreign key on purpose: the row outlives
 * a deleted account (which is anonymized), and `details` never holds secrets, passwords or tokens.
 */
export const auditEvents = pgTable(
  "audit_events",
  {
    id: bigint({ mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    at: timestamp({ withTimezone: true }).notNull().defaultNow(),
    event: text().notNull(),
    outcome: text({ enum: ["success", "failure"] }).notNull(),
    userId: uuid(),
    actorId: uuid(),
    clientId: text(),
    sessionId: uuid(),
    ip: text(),
    userAgent: text(),
    details: jsonb().$type<Record<string, unknown>>(),
  },
  (t) => [
    index("audit_events_user_id_idx").on(t.userId, t.at),
    index("audit_events_at_idx").on(t.at),
    // The console's and admin API's audit filters (#14) page newest first by id within a client or an event type.
    index("audit_events_client_id_idx").on(t.clientId, t.id),
    index("audit_events_event_idx").on(t.event, t.id),
  ],
);
