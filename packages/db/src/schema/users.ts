import { sql } from "drizzle-orm";
import { boolean, index, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

/**
 * End-user accounts. `email` is stored normalized (trimmed, lower-cased) so the unique index makes it
 * case-insensitive; `password_hash` is an argon2id PHC string (parameters travel inside it, which is how
 * re-hash-on-login detects raised parameters).
 */
export const users = pgTable(
  "users",
  {
    id: uuid().primaryKey().defaultRandom(),
    email: text().notNull(),
    emailVerifiedAt: timestamp({ withTimezone: true }),
    passwordHash: text(),
    passwordChangedAt: timestamp({ withTimezone: true }),
    displayName: text(),
    isAdmin: boolean().notNull().default(false),
    /** A guest account (libraries/accounts/guests.ts): no email of its own yet, swept when idle, upgraded in place. */
    isAnonymous: boolean().notNull().default(false),
    /**
     * The admin level of an admin (`is_admin` true): `admin` (everything) or `support` (read-only, may also end
     * sessions and lift suspensions). Null on an admin means full admin, so rows from before levels existed keep
     * their meaning with no data migration; ignored when `is_admin` is false.
     */
    adminRole: text({ enum: ["admin", "support"] }),
    /** The language the user chose for hosted pages and emails (`en`, `de`, `es`); null follows the browser. */
    locale: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    disabledAt: timestamp({ withTimezone: true }),
    deletedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    // Deleted accounts are anonymized (email replaced), so the unique index can stay unconditional.
    uniqueIndex("users_email_key").on(sql`lower(${t.email})`),
    index("users_created_at_idx").on(t.createdAt),
  ],
);

/** Single-purpose, single-use email tokens (verification, password reset, email change). Only SHA-256 stored. */
export const emailTokens = pgTable(
  "email_tokens",
  {
    id: uuid().primaryKey().defaultRandom(),
    tokenHash: text().notNull(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text({ enum: ["verify_email", "reset_password", "change_email"] }).notNull(),
    /** For change_email: the address being verified. */
    newEmail: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    usedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex("email_tokens_token_hash_key").on(t.tokenHash),
    index("email_tokens_user_purpose_idx").on(t.userId, t.purpose),
    index("email_tokens_expires_at_idx").on(t.expiresAt),
  ],
);
