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
  /**
   * After a rotation, the previous secret (encrypted like the current one) until `previous_secret_expires_at`:
   * deliveries meanwhile carry both signatures (`v1,<new> v1,<old>`), so a receiver still configured with either
   * verifies them while its operator deploys the new secret.
   */
  previousSecretEncrypted: text(),
  previousSecretExpiresAt: timestamp({ withTimezone: true }),
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

/**
 * A pending webhook fan-out (#16): a catalog-wide change (a role deleted, its permissions changed, a permission
 * renamed or deleted) concerns every holder of the role, possibly millions. The admin's transaction writes ONE row
 * here per role scope (the holders' ids, snapshotted before any delete cascades), not one delivery per holder; the
 * webhook worker expands it afterwards in batches (`expanded` counts the holders done), each batch one transaction that
 * inserts its deliveries and moves `expanded` together, so a crash repeats no batch and loses none.
 */
export const webhookFanouts = pgTable(
  "webhook_fanouts",
  {
    id: uuid().primaryKey().defaultRandom(),
    eventType: text().notNull(),
    /** The app whose role changed (its holders hear it on that app only), or null for a global role (every app). */
    clientId: uuid().references(() => clients.id, { onDelete: "cascade" }),
    /** The holders at the time of the change, in a fixed order; batches take slices of it. */
    userIds: uuid().array().notNull(),
    /** How many of `user_ids` have had their deliveries queued. */
    expanded: integer().notNull().default(0),
    /** The event's `timestamp` (the time of the change, not of the expansion). */
    eventTimestamp: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("webhook_fanouts_created_idx").on(t.createdAt)],
);
