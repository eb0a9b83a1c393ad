import { sql } from "drizzle-orm";
import {
  boolean,
  check,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { users } from "./users.ts";

/**
 * Selling things that unlock entitlements (issue #12).
 *
 * - A **plan** maps a price (a Stripe price id, and/or a fixed crypto amount for BTCPay) to entitlement names, with
 *   optional app limits (`client_ids`, internal client uuids; null = every app) passed through to the grants.
 * - A **billing customer** links a user to the provider's customer object (Stripe `cus_…`).
 * - A **purchase** is one subscription or one-time payment at a provider, keyed by the provider's own id
 *   (`sub_…`, `pi_…`, a BTCPay invoice id). Its state is a copy of the provider's current state, refreshed on every
 *   signed webhook; its grants in `user_entitlements` (`source = 'purchase'`, `source_ref = purchases.id`) are
 *   recomputed from it.
 * - A **billing event** is a webhook delivery, recorded once by the provider's event id, so a replay is a no-op.
 */
export const plans = pgTable(
  "plans",
  {
    id: uuid().primaryKey().defaultRandom(),
    name: text().notNull(),
    description: text().notNull().default(""),
    /** `subscription` or `one_time`; from the Stripe price's type, `one_time` for crypto-only plans. */
    kind: text({ enum: ["subscription", "one_time"] }).notNull(),
    stripePriceId: text(),
    /** For one-time plans: how long the entitlements last after payment (a 30-day pass); null = for good. */
    durationDays: integer(),
    /** Fixed crypto price as a decimal string ("5.00") in `crypto_currency` (e.g. USD), invoiced through BTCPay. */
    cryptoPrice: text(),
    cryptoCurrency: text(),
    entitlements: text().array().notNull(),
    clientIds: uuid().array(),
    archivedAt: timestamp({ withTimezone: true }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("plans_name_key").on(t.name),
    check("plans_has_price", sql`${t.stripePriceId} is not null or ${t.cryptoPrice} is not null`),
    check("plans_entitlements_nonempty", sql`cardinality(${t.entitlements}) > 0`),
  ],
);

export const billingCustomers = pgTable(
  "billing_customers",
  {
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    provider: text({ enum: ["stripe", "btcpay"] }).notNull(),
    customerId: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.provider] }),
    uniqueIndex("billing_customers_provider_customer_key").on(t.provider, t.customerId),
  ],
);

export const purchases = pgTable(
  "purchases",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    planId: uuid()
      .notNull()
      .references(() => plans.id),
    provider: text({ enum: ["stripe", "btcpay"] }).notNull(),
    /** The provider's id of the subscription, payment intent or invoice. */
    providerRef: text().notNull(),
    kind: text({ enum: ["subscription", "one_time"] }).notNull(),
    /** The provider's status, as last read from the provider (`active`, `past_due`, `canceled`, `Settled`, …). */
    status: text().notNull(),
    currentPeriodEnd: timestamp({ withTimezone: true }),
    cancelAtPeriodEnd: boolean().notNull().default(false),
    /** When Tessera first saw the subscription past due; the grace period counts from here. */
    pastDueSince: timestamp({ withTimezone: true }),
    /** When Tessera first saw the payment complete (one-time purchases count their duration from here). */
    paidAt: timestamp({ withTimezone: true }),
    refundedAt: timestamp({ withTimezone: true }),
    /** The provider's link to the latest receipt or invoice, shown on /account/billing. */
    receiptUrl: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("purchases_provider_ref_key").on(t.provider, t.providerRef),
    index("purchases_user_idx").on(t.userId),
  ],
);

export const billingEvents = pgTable(
  "billing_events",
  {
    provider: text({ enum: ["stripe", "btcpay"] }).notNull(),
    eventId: text().notNull(),
    type: text().notNull(),
    receivedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.provider, t.eventId] }), index("billing_events_received_idx").on(t.receivedAt)],
);
