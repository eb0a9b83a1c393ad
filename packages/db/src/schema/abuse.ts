import { bigint, index, integer, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { users } from "./users.ts";

/**
 * Failed-login counters per account key (a hash of the normalized email, so unknown emails count the same way
 * known ones do and nothing here reveals which exist).
 */
export const accountThrottles = pgTable("account_throttles", {
  key: text().primaryKey(),
  failures: integer().notNull().default(0),
  lastFailureAt: timestamp({ withTimezone: true }),
  lockedUntil: timestamp({ withTimezone: true }),
  locks: integer().notNull().default(0),
});

/** IP suspensions with exponential backoff; expire by themselves, and admins can lift them. */
export const ipSuspensions = pgTable(
  "ip_suspensions",
  {
    ip: text().primaryKey(),
    failures: integer().notNull().default(0),
    windowStartedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    suspendedUntil: timestamp({ withTimezone: true }),
    suspensions: integer().notNull().default(0),
    liftedAt: timestamp({ withTimezone: true }),
  },
  (t) => [index("ip_suspensions_until_idx").on(t.suspendedUntil)],
);

/** TOTP factor: the secret is encrypted with the master key; `lastUsedStep` rejects replayed codes. */
export const totpFactors = pgTable("totp_factors", {
  userId: uuid()
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  secretEncrypted: text().notNull(),
  confirmedAt: timestamp({ withTimezone: true }),
  lastUsedStep: bigint({ mode: "number" }),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
});

/** Single-use recovery codes, stored as SHA-256 (they are high-entropy random strings). */
export const recoveryCodes = pgTable(
  "recovery_codes",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    codeHash: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    usedAt: timestamp({ withTimezone: true }),
  },
  (t) => [index("recovery_codes_user_id_idx").on(t.userId)],
);

/**
 * The half-finished sign-in between the password step and the second-factor step. The session is not created
 * until the second step succeeds; the browser holds only the random challenge value (SHA-256 stored here).
 */
export const mfaChallenges = pgTable("mfa_challenges", {
  id: uuid().primaryKey().defaultRandom(),
  tokenHash: text().notNull().unique(),
  userId: uuid()
    .notNull()
    .references(() => users.id, { onDelete: "cascade" }),
  attempts: integer().notNull().default(0),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  expiresAt: timestamp({ withTimezone: true }).notNull(),
  usedAt: timestamp({ withTimezone: true }),
});
