import { index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { clients } from "./clients.ts";
import { sessions } from "./sessions.ts";
import { users } from "./users.ts";

/**
 * RFC 8628 device authorizations (consoles, TVs). Both codes are stored as SHA-256 only: the device code is 256 bits
 * of CSPRNG output; the user code is short (8 letters, ~34 bits) but lives minutes, works once and its guesses are
 * throttled. `status` moves pending → approved | denied → consumed, each step a conditional UPDATE.
 */
export const deviceCodes = pgTable(
  "device_codes",
  {
    id: uuid().primaryKey().defaultRandom(),
    deviceCodeHash: text().notNull(),
    userCodeHash: text().notNull(),
    clientId: uuid()
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    scope: text().notNull(),
    status: text({ enum: ["pending", "approved", "denied", "consumed"] })
      .notNull()
      .default("pending"),
    /** Seconds a device must wait between polls; raised by 5 at every `slow_down` (RFC 8628 3.5). */
    intervalSeconds: integer().notNull(),
    lastPolledAt: timestamp({ withTimezone: true }),
    /** Who approved or denied, and the browser session they did it from. */
    userId: uuid().references(() => users.id, { onDelete: "cascade" }),
    approvedFromSessionId: uuid().references(() => sessions.id, { onDelete: "set null" }),
    amr: text().array(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    decidedAt: timestamp({ withTimezone: true }),
    consumedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex("device_codes_device_code_hash_key").on(t.deviceCodeHash),
    uniqueIndex("device_codes_user_code_hash_key").on(t.userCodeHash),
    index("device_codes_expires_at_idx").on(t.expiresAt),
  ],
);
