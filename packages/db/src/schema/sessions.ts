import { sql } from "drizzle-orm";
import { index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { clients } from "./clients.ts";
import { users } from "./users.ts";

/**
 * A sign-in session: one user on one browser or device (the "family"). Every client's refresh-token chain in it
 * shares its absolute and idle expiry, so ending or expiring it signs the user out of every app at once.
 */
export const sessions = pgTable(
  "sessions",
  {
    id: uuid().primaryKey().defaultRandom(),
    tokenHash: text().notNull(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    authenticatedAt: timestamp({ withTimezone: true }).notNull(),
    lastSeenAt: timestamp({ withTimezone: true }).notNull(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    idleExpiresAt: timestamp({ withTimezone: true }).notNull(),
    revokedAt: timestamp({ withTimezone: true }),
    revokedReason: text(),
    ip: text(),
    userAgent: text(),
    amr: text().array().notNull().default(["pwd"]),
  },
  (t) => [
    uniqueIndex("sessions_token_hash_key").on(t.tokenHash),
    index("sessions_user_id_idx").on(t.userId),
    index("sessions_expires_at_idx").on(t.expiresAt),
    // The sweeper's garbage test is expires_at OR idle_expires_at OR revoked_at before a cutoff: one index each, so
    // PostgreSQL answers it with a BitmapOr instead of a sequential scan.
    index("sessions_idle_expires_at_idx").on(t.idleExpiresAt),
    index("sessions_revoked_at_idx").on(t.revokedAt).where(sql`${t.revokedAt} is not null`),
  ],
);

/**
 * Per-client refresh tokens, rotated on every use; `parentId` links a token to the one it replaced. A chain keeps its
 * live token and the latest retired one (what the concurrent-refresh grace window needs); older generations are
 * deleted as the chain rotates. Reuse of any of them is still recognized: every token carries its chain's `chainId`
 * (see libraries/oauth/tokens.ts), so a retired token that is no longer stored still names its chain and session.
 */
export const refreshTokens = pgTable(
  "refresh_tokens",
  {
    id: uuid().primaryKey().defaultRandom(),
    tokenHash: text().notNull(),
    sessionId: uuid()
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    clientId: uuid()
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    parentId: uuid(),
    /**
     * Shared by every token of one chain (and part of each token's value). Null on tokens issued before chains had
     * one: those chains keep every retired token, as before.
     */
    chainId: uuid(),
    scope: text().notNull(),
    /** The authorization code the chain started from (kept on its successors), so a replayed code can revoke it. */
    authorizationCodeId: uuid(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    rotatedAt: timestamp({ withTimezone: true }),
    revokedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex("refresh_tokens_token_hash_key").on(t.tokenHash),
    index("refresh_tokens_session_id_idx").on(t.sessionId),
    // No index on parent_id or authorization_code_id: the two queries by them (the grace window's successor, the
    // tokens a replayed code issued) are always asked within one session and use refresh_tokens_session_id_idx, and
    // every index here is written on every rotation (two fewer: ~13% less WAL per rotation).
    index("refresh_tokens_chain_id_idx").on(t.chainId),
    // The sweeper deletes tokens revoked before a cutoff; only revoked rows are indexed.
    index("refresh_tokens_revoked_at_idx").on(t.revokedAt).where(sql`${t.revokedAt} is not null`),
  ],
);

/** Authorization codes: 256-bit, SHA-256 stored, ≤ 60 s, single use (consumed with a conditional UPDATE). */
export const authorizationCodes = pgTable(
  "authorization_codes",
  {
    id: uuid().primaryKey().defaultRandom(),
    codeHash: text().notNull(),
    clientId: uuid()
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    sessionId: uuid()
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    redirectUri: text().notNull(),
    codeChallenge: text().notNull(),
    codeChallengeMethod: text().notNull().default("S256"),
    scope: text().notNull(),
    nonce: text(),
    authTime: timestamp({ withTimezone: true }).notNull(),
    amr: text().array().notNull().default(["pwd"]),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    consumedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex("authorization_codes_code_hash_key").on(t.codeHash),
    index("authorization_codes_expires_at_idx").on(t.expiresAt),
  ],
);

/** Admin API keys for scripts (`Authorization: Bearer`); only SHA-256 stored. */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid().primaryKey().defaultRandom(),
    name: text().notNull(),
    keyHash: text().notNull(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastUsedAt: timestamp({ withTimezone: true }),
    revokedAt: timestamp({ withTimezone: true }),
  },
  (t) => [uniqueIndex("api_keys_key_hash_key").on(t.keyHash)],
);

/** Durable outbox for back-channel logout notifications: retried with backoff, survives restarts. */
export const backchannelLogoutJobs = pgTable(
  "backchannel_logout_jobs",
  {
    id: uuid().primaryKey().defaultRandom(),
    clientId: uuid()
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    sessionId: uuid().notNull(),
    userId: uuid().notNull(),
    logoutUri: text().notNull(),
    attempts: integer().notNull().default(0),
    nextAttemptAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastError: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp({ withTimezone: true }),
    abandonedAt: timestamp({ withTimezone: true }),
  },
  (t) => [index("backchannel_logout_jobs_due_idx").on(t.nextAttemptAt)],
);
