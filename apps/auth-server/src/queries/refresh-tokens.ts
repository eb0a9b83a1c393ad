import { clients, type Executor, refreshTokens, sessions, users } from "@tessera/db";
import { and, eq, isNull } from "drizzle-orm";

export type RefreshTokenRow = typeof refreshTokens.$inferSelect;
type SessionRow = typeof sessions.$inferSelect;
type UserRow = typeof users.$inferSelect;
type ClientRow = typeof clients.$inferSelect;

export interface RefreshTokenWithOwners {
  token: RefreshTokenRow;
  session: SessionRow;
  user: UserRow;
  client: ClientRow;
}

export async function insertRefreshToken(
  db: Executor,
  row: typeof refreshTokens.$inferInsert,
): Promise<RefreshTokenRow> {
  const [created] = await db.insert(refreshTokens).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** A refresh token by hash with its session, user and client, whatever their state (callers check each rule). */
export async function findRefreshTokenByHash(db: Executor, tokenHash: string): Promise<RefreshTokenWithOwners | null> {
  const [row] = await db
    .select({ token: refreshTokens, session: sessions, user: users, client: clients })
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .innerJoin(users, eq(users.id, refreshTokens.userId))
    .innerJoin(clients, eq(clients.id, refreshTokens.clientId))
    .where(eq(refreshTokens.tokenHash, tokenHash))
    .limit(1);
  return row ?? null;
}

export async function findRefreshTokenById(db: Executor, id: string): Promise<RefreshTokenRow | null> {
  const [row] = await db.select().from(refreshTokens).where(eq(refreshTokens.id, id)).limit(1);
  return row ?? null;
}

/**
 * Retires a token for rotation: one conditional UPDATE, so of N parallel refreshes with the same token exactly one
 * gets the row back (the others wait for its row lock, then match nothing). Run it in the transaction that inserts the
 * successor so the loser, once unblocked, sees the successor.
 */
export async function retireRefreshToken(db: Executor, id: string, now: Date): Promise<RefreshTokenRow | null> {
  const [row] = await db
    .update(refreshTokens)
    .set({ rotatedAt: now })
    .where(and(eq(refreshTokens.id, id), isNull(refreshTokens.rotatedAt), isNull(refreshTokens.revokedAt)))
    .returning();
  return row ?? null;
}

/**
 * Locks a session row until the transaction ends (FOR NO KEY UPDATE: what an UPDATE of the row takes, so a code
 * redemption inserting a token of the session is not blocked). Ending a session updates its row before its tokens;
 * every other transaction that changes a session's refresh tokens calls this first, so all of them lock in one order,
 * session then tokens, and never deadlock one another (on PostgreSQL a deadlock aborts one of them: a 500).
 */
export async function lockSession(db: Executor, sessionId: string): Promise<void> {
  await db.select({ id: sessions.id }).from(sessions).where(eq(sessions.id, sessionId)).for("no key update");
}

/**
 * True while a client still holds a refresh token in a session that was not revoked: an access token is issued with
 * such a chain, and lives only as long as it does (a replayed code or an RFC 7009 revocation ends both).
 */
export async function hasLiveChain(db: Executor, sessionId: string, clientId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: refreshTokens.id })
    .from(refreshTokens)
    .where(
      and(
        eq(refreshTokens.sessionId, sessionId),
        eq(refreshTokens.clientId, clientId),
        isNull(refreshTokens.revokedAt),
      ),
    )
    .limit(1);
  return row !== undefined;
}

/** The successor of a rotated token (a chain has at most one, because only one retirement can succeed). */
export async function findChildToken(db: Executor, parentId: string): Promise<RefreshTokenRow | null> {
  const [row] = await db.select().from(refreshTokens).where(eq(refreshTokens.parentId, parentId)).limit(1);
  return row ?? null;
}

/**
 * Revokes one client's refresh-token chain in one session (RFC 7009 revocation of a refresh token). Takes the session
 * lock first (see lockSession): run it in a transaction.
 */
export async function revokeClientChain(db: Executor, sessionId: string, clientId: string, now: Date): Promise<number> {
  await lockSession(db, sessionId);
  const revoked = await db
    .update(refreshTokens)
    .set({ revokedAt: now })
    .where(
      and(
        eq(refreshTokens.sessionId, sessionId),
        eq(refreshTokens.clientId, clientId),
        isNull(refreshTokens.revokedAt),
      ),
    )
    .returning({ id: refreshTokens.id });
  return revoked.length;
}
