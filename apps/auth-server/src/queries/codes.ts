import { authorizationCodes, type Executor, refreshTokens, sessions, users } from "@tessera/db";
import { and, eq, gt, isNull, sql } from "drizzle-orm";
import { prepared } from "./prepared.ts";
import { revokeClientChain } from "./refresh-tokens.ts";

export type AuthorizationCodeRow = typeof authorizationCodes.$inferSelect;

export async function insertAuthorizationCode(
  db: Executor,
  row: typeof authorizationCodes.$inferInsert,
): Promise<AuthorizationCodeRow> {
  const [created] = await db.insert(authorizationCodes).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/**
 * Redeems a code: one conditional UPDATE, so of N parallel redemptions exactly one gets the row back. Run it in the
 * transaction that issues the tokens, so the row lock is held until they are written: a concurrent redemption waits,
 * then sees the code consumed and can revoke what this one issued.
 */
export async function consumeAuthorizationCode(
  db: Executor,
  codeHash: string,
  now: Date,
): Promise<AuthorizationCodeRow | null> {
  const [row] = await prepared(db, "authorization_code_consume", (d) =>
    d
      .update(authorizationCodes)
      .set({ consumedAt: sql.placeholder("now") as unknown as Date })
      .where(
        and(
          eq(authorizationCodes.codeHash, sql.placeholder("codeHash")),
          isNull(authorizationCodes.consumedAt),
          // A placeholder compared with a column is sent as is (no column encoding): the timestamp as text.
          gt(authorizationCodes.expiresAt, sql.placeholder("nowText")),
        ),
      )
      .returning()
      .prepare("authorization_code_consume"),
  ).execute({ codeHash, now, nowText: now.toISOString() });
  return row ?? null;
}

export async function findAuthorizationCodeByHash(
  db: Executor,
  codeHash: string,
): Promise<AuthorizationCodeRow | null> {
  const [row] = await db.select().from(authorizationCodes).where(eq(authorizationCodes.codeHash, codeHash)).limit(1);
  return row ?? null;
}

/**
 * Revokes every refresh token issued from a code and every token rotated from them (same session and client). Run it
 * in a transaction (it takes the session lock).
 */
export async function revokeTokensIssuedFromCode(db: Executor, code: AuthorizationCodeRow, now: Date): Promise<number> {
  // Within the code's session (refresh_tokens_session_id_idx): authorization_code_id has no index of its own.
  const issued = await db
    .select({ id: refreshTokens.id })
    .from(refreshTokens)
    .where(and(eq(refreshTokens.sessionId, code.sessionId), eq(refreshTokens.authorizationCodeId, code.id)))
    .limit(1);
  if (issued.length === 0) return 0;
  // A chain never leaves its session and client, so revoking the client's tokens in that session covers successors.
  return revokeClientChain(db, code.sessionId, code.clientId, now);
}

type SessionWithUser = { session: typeof sessions.$inferSelect; user: typeof users.$inferSelect };

/** A session and its user, whatever their state (callers check revocation, expiry and disabled accounts). */
export async function findSessionWithUser(db: Executor, sessionId: string): Promise<SessionWithUser | null> {
  const [row] = await prepared(db, "session_with_user", (d) =>
    d
      .select({ session: sessions, user: users })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(eq(sessions.id, sql.placeholder("sessionId")))
      .limit(1)
      .prepare("session_with_user"),
  ).execute({ sessionId });
  return row ?? null;
}

/**
 * findSessionWithUser that also locks the session (FOR NO KEY UPDATE, as lockSession in refresh-tokens.ts) in the
 * same statement; the session row comes back as it is once the lock is held.
 */
export async function lockSessionWithUser(db: Executor, sessionId: string): Promise<SessionWithUser | null> {
  const [row] = await prepared(db, "session_with_user_locked", (d) =>
    d
      .select({ session: sessions, user: users })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(eq(sessions.id, sql.placeholder("sessionId")))
      .limit(1)
      .for("no key update", { of: sessions })
      .prepare("session_with_user_locked"),
  ).execute({ sessionId });
  return row ?? null;
}
