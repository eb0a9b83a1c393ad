import { bigint, boolean, index, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { sessions } from "./sessions.ts";
import { users } from "./users.ts";

/**
 * WebAuthn credentials (passkeys). `credential_id` is the authenticator's id (base64url, unique across users: the same
 * authenticator never registers one credential twice); `public_key` the COSE key (base64url), public by nature.
 * `counter` is the last signature counter seen: an assertion must carry a higher one (authenticators that never count
 * send 0 every time). `backup_eligible`/`backed_up` are the BE/BS flags: a backed-up (synced) key decides `amr` `swk`.
 */
export const passkeys = pgTable(
  "passkeys",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    credentialId: text().notNull().unique(),
    publicKey: text().notNull(),
    counter: bigint({ mode: "number" }).notNull().default(0),
    transports: text().array().notNull().default([]),
    backupEligible: boolean().notNull().default(false),
    backedUp: boolean().notNull().default(false),
    name: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastUsedAt: timestamp({ withTimezone: true }),
  },
  (t) => [index("passkeys_user_idx").on(t.userId)],
);

/**
 * One WebAuthn ceremony in progress: the random challenge the browser must sign, bound to the browser by a cookie
 * (`token_hash`, SHA-256 of its 256-bit value) and to what it is for (`purpose`: register | sign_in | second_step | federation_link),
 * the session that registers, or the half-finished sign-in (`mfa_challenge_id`) it completes. Short-lived, used once.
 */
export const passkeyChallenges = pgTable(
  "passkey_challenges",
  {
    id: uuid().primaryKey().defaultRandom(),
    tokenHash: text().notNull().unique(),
    challenge: text().notNull(),
    purpose: text().notNull(),
    userId: uuid().references(() => users.id, { onDelete: "cascade" }),
    sessionId: uuid().references(() => sessions.id, { onDelete: "cascade" }),
    mfaChallengeId: uuid(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    usedAt: timestamp({ withTimezone: true }),
  },
  (t) => [index("passkey_challenges_expires_idx").on(t.expiresAt)],
);
