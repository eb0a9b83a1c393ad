import {
  authorizationCodes,
  backchannelLogoutJobs,
  clients,
  type Executor,
  refreshTokens,
  sessions,
  users,
} from "@tessera/db";
import { and, desc, eq, gt, inArray, isNotNull, isNull, ne } from "drizzle-orm";

export type SessionRow = typeof sessions.$inferSelect;
export type UserRow = typeof users.$inferSelect;

export async function insertSession(db: Executor, row: typeof sessions.$inferInsert): Promise<SessionRow> {
  const [created] = await db.insert(sessions).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** The session and its user for a token hash, if the session is neither revoked nor expired (absolute or idle). */
export async function findLiveSessionByHash(
  db: Executor,
  tokenHash: string,
  now: Date,
): Promise<{ session: SessionRow; user: UserRow } | null> {
  const [row] = await db
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(
      and(
        eq(sessions.tokenHash, tokenHash),
        isNull(sessions.revokedAt),
        gt(sessions.expiresAt, now),
        gt(sessions.idleExpiresAt, now),
        isNull(users.disabledAt),
        isNull(users.deletedAt),
      ),
    )
    .limit(1);
  return row ?? null;
}

export async function findLiveSessionById(db: Executor, id: string, now: Date): Promise<SessionRow | null> {
  const [row] = await db
    .select()
    .from(sessions)
    .where(
      and(
        eq(sessions.id, id),
        isNull(sessions.revokedAt),
        gt(sessions.expiresAt, now),
        gt(sessions.idleExpiresAt, now),
      ),
    )
    .limit(1);
  return row ?? null;
}

export async function updateSession(
  db: Executor,
  id: string,
  values: Partial<typeof sessions.$inferInsert>,
): Promise<SessionRow | null> {
  const [row] = await db.update(sessions).set(values).where(eq(sessions.id, id)).returning();
  return row ?? null;
}

/** Updates a session only if it has not been revoked (re-authentication must not revive an ended session). */
export async function updateUnrevokedSession(
  db: Executor,
  id: string,
  values: Partial<typeof sessions.$inferInsert>,
): Promise<SessionRow | null> {
  const [row] = await db
    .update(sessions)
    .set(values)
    .where(and(eq(sessions.id, id), isNull(sessions.revokedAt)))
    .returning();
  return row ?? null;
}

export async function listLiveSessions(db: Executor, userId: string, now: Date): Promise<SessionRow[]> {
  return db
    .select()
    .from(sessions)
    .where(
      and(
        eq(sessions.userId, userId),
        isNull(sessions.revokedAt),
        gt(sessions.expiresAt, now),
        gt(sessions.idleExpiresAt, now),
      ),
    )
    .orderBy(desc(sessions.lastSeenAt));
}

/**
 * Revokes sessions and every refresh token in them, and queues a back-channel logout for every client that took part
 * (holds a refresh token or was issued a code in the session). Returns the ids actually revoked by this call.
 */
export async function revokeSessions(
  db: Executor,
  where: { ids?: string[]; userId?: string; exceptId?: string },
  reason: string,
  now: Date,
): Promise<string[]> {
  const conditions = [isNull(sessions.revokedAt)];
  if (where.ids)
    conditions.push(inArray(sessions.id, where.ids.length ? where.ids : ["00000000-0000-0000-0000-000000000000"]));
  if (where.userId) conditions.push(eq(sessions.userId, where.userId));
  if (where.exceptId) conditions.push(ne(sessions.id, where.exceptId));
  const revoked = await db
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(...conditions))
    .returning({ id: sessions.id, userId: sessions.userId });
  if (revoked.length === 0) return [];
  const ids = revoked.map((r) => r.id);
  await db
    .update(refreshTokens)
    .set({ revokedAt: now })
    .where(and(inArray(refreshTokens.sessionId, ids), isNull(refreshTokens.revokedAt)));
  await enqueueBackchannelLogouts(db, ids);
  return ids;
}

/** One job per (session, participating client with a back-channel URI); delivered by the back-channel worker. */
export async function enqueueBackchannelLogouts(db: Executor, sessionIds: string[]): Promise<void> {
  if (sessionIds.length === 0) return;
  const participants = db
    .selectDistinct({
      sessionId: refreshTokens.sessionId,
      clientId: refreshTokens.clientId,
      userId: refreshTokens.userId,
    })
    .from(refreshTokens)
    .where(inArray(refreshTokens.sessionId, sessionIds))
    .union(
      db
        .selectDistinct({
          sessionId: authorizationCodes.sessionId,
          clientId: authorizationCodes.clientId,
          userId: authorizationCodes.userId,
        })
        .from(authorizationCodes)
        .where(inArray(authorizationCodes.sessionId, sessionIds)),
    )
    .as("participants");
  const rows = await db
    .select({
      sessionId: participants.sessionId,
      clientId: participants.clientId,
      userId: participants.userId,
      logoutUri: clients.backchannelLogoutUri,
    })
    .from(participants)
    .innerJoin(clients, eq(clients.id, participants.clientId))
    .where(isNotNull(clients.backchannelLogoutUri));
  const jobs = rows
    .filter((r): r is typeof r & { logoutUri: string } => r.logoutUri !== null)
    .map((r) => ({ sessionId: r.sessionId, clientId: r.clientId, userId: r.userId, logoutUri: r.logoutUri }));
  if (jobs.length) await db.insert(backchannelLogoutJobs).values(jobs);
}
