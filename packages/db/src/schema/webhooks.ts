import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { clients } from "./clients.ts";

/**
 * A client's webhook endpoint (issue #16): where events are POSTed, the signing secret (Standard Webhooks
 * `whsec_…`, encrypted with the master key because it must be read back to sign), and the event types it wants.
 */
export const webhookEndpoints = pgTable("webhook_endpoints", {
  clientId: uuid()
    .primaryKey()
    .references(() => clients.id, { onDelete: "cascade" }),
  url: text().notNull(),
  secretEncrypted: text().notNull(),
  events: text().array().notNull(),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
});

/**
 * The durable outbox: one row per event per subscribed client, written in the transaction of the change. `id` is the
 * `webhook-id` (stable across retries and restarts); `seq` orders deliveries per (client, user).
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: uuid().primaryKey().defaultRandom(),
    seq: bigserial({ mode: "number" }).notNull(),
    clientId: uuid()
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    userId: uuid().notNull(),
    eventType: text().notNull(),
    payload: jsonb().notNull(),
    attempts: integer().notNull().default(0),
    nextAttemptAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastError: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp({ withTimezone: true }),
    deadAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    index("webhook_deliveries_due_idx").on(t.nextAttemptAt),
    index("webhook_deliveries_order_idx").on(t.clientId, t.userId, t.seq),
  ],
);
