import { clients, type Executor, refreshTokens, sessions, users } from "@tessera/db";
import { and, desc, eq, isNotNull, isNull, sql } from "drizzle-orm";
import { notifySessionChange } from "./owners-cache.ts";
import { prepared } from "./prepared.ts";

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

/** What a plain rotation reads (refresh-rotation.ts): the token, its session and user in full, of the client only whether
 * it is disabled. */
export interface RefreshTokenForRotation extends Omit<RefreshTokenWithOwners, "client"> {
  client: Pick<ClientRow, "disabledAt">;
}

export async function insertRefreshToken(
  db: Executor,
  row: typeof refreshTokens.$inferInsert,
): Promise<RefreshTokenRow> {
  const [created] = await db.insert(refreshTokens).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** The values a new refresh token row needs (the hot path inserts exactly these, through one prepared statement). */
export interface NewRefreshToken {
  tokenHash: string;
  sessionId: string;
  clientId: string;
  userId: string;
  parentId: string | null;
  chainId: string;
  authorizationCodeId: string | null;
  scope: string;
  createdAt: Date;
}

/** Inserts a refresh token; returns its id. */
export async function insertRefreshTokenRow(db: Executor, row: NewRefreshToken): Promise<string> {
  const [created] = await prepared(db, "refresh_token_insert", (d) =>
    d
      .insert(refreshTokens)
      .values({
        tokenHash: sql.placeholder("tokenHash"),
        sessionId: sql.placeholder("sessionId"),
        clientId: sql.placeholder("clientId"),
        userId: sql.placeholder("userId"),
        parentId: sql.placeholder("parentId"),
        chainId: sql.placeholder("chainId"),
        authorizationCodeId: sql.placeholder("authorizationCodeId"),
        scope: sql.placeholder("scope"),
        createdAt: sql.placeholder("createdAt"),
      })
      .returning({ id: refreshTokens.id })
      .prepare("refresh_token_insert"),
  ).execute({ ...row });
  if (!created) throw new Error("insert returned no row");
  return created.id;
}

const OWNERS = { token: refreshTokens, session: sessions, user: users, client: clients };

/** A refresh token joined to its session, user and client: the start of every "token with owners" query. */
function withOwners(d: Executor) {
  return d
    .select(OWNERS)
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .innerJoin(users, eq(users.id, refreshTokens.userId))
    .innerJoin(clients, eq(clients.id, refreshTokens.clientId));
}

/** A refresh token by hash with its session, user and client, whatever their state (callers check each rule). */
export async function findRefreshTokenByHash(db: Executor, tokenHash: string): Promise<RefreshTokenWithOwners | null> {
  const [row] = await prepared(db, "refresh_token_by_hash", (d) =>
    withOwners(d)
      .where(eq(refreshTokens.tokenHash, sql.placeholder("tokenHash")))
      .limit(1)
      .prepare("refresh_token_by_hash"),
  ).execute({ tokenHash });
  return row ?? null;
}

/**
 * findRefreshTokenByHash that also locks the token's session (FOR NO KEY UPDATE OF sessions, see lockSession), in one
 * statement. The session row comes back as it is once the lock is held; the token row may be older (a concurrent
 * rotation that committed while this one waited is not seen), which is why retiring it stays a conditional UPDATE.
 */
export async function lockRefreshTokenByHash(db: Executor, tokenHash: string): Promise<RefreshTokenWithOwners | null> {
  const [row] = await prepared(db, "refresh_token_by_hash_locked", (d) =>
    withOwners(d)
      .where(eq(refreshTokens.tokenHash, sql.placeholder("tokenHash")))
      .limit(1)
      .for("no key update", { of: sessions })
      .prepare("refresh_token_by_hash_locked"),
  ).execute({ tokenHash });
  return row ?? null;
}

/**
 * The newest stored token of a chain with its owners, locking the session like lockRefreshTokenByHash: how a retired
 * token whose row is gone is recognized (reuse) and its session found.
 */
export async function lockChainByChainId(db: Executor, chainId: string): Promise<RefreshTokenWithOwners | null> {
  const [row] = await prepared(db, "refresh_token_chain_locked", (d) =>
    withOwners(d)
      .where(eq(refreshTokens.chainId, sql.placeholder("chainId")))
      .orderBy(desc(refreshTokens.createdAt))
      .limit(1)
      .for("no key update", { of: sessions })
      .prepare("refresh_token_chain_locked"),
  ).execute({ chainId });
  return row ?? null;
}

/** The newest stored token of a chain with its owners (no lock), for /revoke with a retired token. */
export async function findChainByChainId(db: Executor, chainId: string): Promise<RefreshTokenWithOwners | null> {
  const [row] = await prepared(db, "refresh_token_chain", (d) =>
    withOwners(d)
      .where(eq(refreshTokens.chainId, sql.placeholder("chainId")))
      .orderBy(desc(refreshTokens.createdAt))
      .limit(1)
      .prepare("refresh_token_chain"),
  ).execute({ chainId });
  return row ?? null;
}

export async function findRefreshTokenById(db: Executor, id: string): Promise<RefreshTokenRow | null> {
  const [row] = await db.select().from(refreshTokens).where(eq(refreshTokens.id, id)).limit(1);
  return row ?? null;
}

/** Revokes one token (if not revoked already). */
export async function revokeRefreshTokenById(db: Executor, id: string, now: Date): Promise<void> {
  await db
    .update(refreshTokens)
    .set({ revokedAt: now })
    .where(and(eq(refreshTokens.id, id), isNull(refreshTokens.revokedAt)));
}

/**
 * Retires a token for rotation: one conditional UPDATE, so of N parallel refreshes with the same token exactly one
 * gets the row back (the others wait for its row lock, then match nothing). Run it in the transaction that inserts the
 * successor so the loser, once unblocked, sees the successor.
 */
export async function retireRefreshToken(db: Executor, id: string, now: Date): Promise<{ id: string } | null> {
  const [row] = await prepared(db, "refresh_token_retire", (d) =>
    d
      .update(refreshTokens)
      .set({ rotatedAt: sql.placeholder("now") as unknown as Date })
      .where(
        and(
          eq(refreshTokens.id, sql.placeholder("id")),
          isNull(refreshTokens.rotatedAt),
          isNull(refreshTokens.revokedAt),
        ),
      )
      .returning({ id: refreshTokens.id })
      .prepare("refresh_token_retire"),
  ).execute({ id, now });
  return row ?? null;
}

/**
 * Deletes a retired token that reuse detection no longer needs as a row: the parent of the token just retired (the
 * chain keeps its new live token and the one it replaced). Only tokens with a chain id go (those without one are
 * recognized only by their row), and only retired ones.
 */
export async function deleteSupersededToken(db: Executor, id: string): Promise<void> {
  await prepared(db, "refresh_token_delete_superseded", (d) =>
    d
      .delete(refreshTokens)
      .where(
        and(
          eq(refreshTokens.id, sql.placeholder("id")),
          isNotNull(refreshTokens.chainId),
          isNotNull(refreshTokens.rotatedAt),
        ),
      )
      .prepare("refresh_token_delete_superseded"),
  ).execute({ id });
}

/**
 * The session part of a successful refresh (idle slide): sets last_seen_at and idle_expires_at. Here rather than in
 * queries/sessions.ts so the refresh path can run it as a prepared statement.
 */
export async function slideSessionIdle(
  db: Executor,
  sessionId: string,
  values: { lastSeenAt: Date; idleExpiresAt: Date },
): Promise<void> {
  await prepared(db, "session_slide_idle", (d) =>
    d
      .update(sessions)
      .set({
        lastSeenAt: sql.placeholder("lastSeenAt") as unknown as Date,
        idleExpiresAt: sql.placeholder("idleExpiresAt") as unknown as Date,
      })
      .where(eq(sessions.id, sql.placeholder("sessionId")))
      .prepare("session_slide_idle"),
  ).execute({ sessionId, ...values });
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

/**
 * The successor of a rotated token (a chain has at most one, because only one retirement can succeed). Looked up within
 * the token's session (refresh_tokens_session_id_idx: a session holds a few rows per client), so parent_id needs no
 * index of its own for the rotations to keep up to date.
 */
export async function findChildToken(
  db: Executor,
  sessionId: string,
  parentId: string,
): Promise<RefreshTokenRow | null> {
  const [row] = await prepared(db, "refresh_token_child", (d) =>
    d
      .select()
      .from(refreshTokens)
      .where(
        and(
          eq(refreshTokens.sessionId, sql.placeholder("sessionId")),
          eq(refreshTokens.parentId, sql.placeholder("parentId")),
        ),
      )
      .limit(1)
      .prepare("refresh_token_child"),
  ).execute({ sessionId, parentId });
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
  if (revoked.length > 0) await notifySessionChange(db, sessionId);
  return revoked.length;
}

/**
 * What checking an access token needs, in one statement: its session and user, its audience client (by public
 * client_id), and whether that client still holds a refresh-token chain in the session that was not revoked.
 */
export async function findAccessTokenOwners(
  db: Executor,
  sessionId: string,
  clientId: string,
): Promise<{ session: SessionRow; user: UserRow; client: ClientRow; liveChain: boolean } | null> {
  const [row] = await prepared(db, "access_token_owners", (d) =>
    d
      .select({
        session: sessions,
        user: users,
        client: clients,
        liveChain:
          sql<boolean>`exists (select 1 from ${refreshTokens} where ${refreshTokens.sessionId} = ${sessions.id} and ${refreshTokens.clientId} = ${clients.id} and ${refreshTokens.revokedAt} is null)`.mapWith(
            Boolean,
          ),
      })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .innerJoin(clients, eq(clients.clientId, sql.placeholder("clientId")))
      .where(eq(sessions.id, sql.placeholder("sessionId")))
      .limit(1)
      .prepare("access_token_owners"),
  ).execute({ sessionId, clientId });
  return row ?? null;
}
