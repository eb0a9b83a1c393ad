import { randomUUID } from "node:crypto";
import {
  auditEvents,
  authorizationCodes,
  backchannelLogoutJobs,
  clients,
  type Executor,
  refreshTokens,
  sessions,
  users,
} from "@tessera/db";
import { and, desc, eq, gt, inArray, isNotNull, isNull, ne, type SQL, sql } from "drizzle-orm";
import { notifySessionChange } from "./owners-cache.ts";
import { prepared } from "./prepared.ts";

export type SessionRow = typeof sessions.$inferSelect;
export type UserRow = typeof users.$inferSelect;

/**
 * The one SQL form of "this session is live": not revoked and neither absolute nor idle expiry reached at `now`.
 * Every query that looks for live sessions uses it (the JS form is `sessionValidity` in libraries/sessions.ts).
 */
export function sessionIsLive(now: Date): SQL {
  return and(isNull(sessions.revokedAt), gt(sessions.expiresAt, now), gt(sessions.idleExpiresAt, now)) as SQL;
}

/**
 * The columns a sign-in sets (every one: the statement is prepared once with a placeholder for each). The id is the
 * caller's when it must know it before the row exists (insertSessionWithAudit: the audit row names it).
 */
type NewSession = Pick<
  typeof sessions.$inferInsert,
  "userId" | "tokenHash" | "authenticatedAt" | "lastSeenAt" | "expiresAt" | "idleExpiresAt" | "amr"
> & { id?: string; ip: string | null; userAgent: string | null };

export async function insertSession(db: Executor, row: NewSession): Promise<SessionRow> {
  const [created] = await prepared(db, "session_insert_v2", (d) =>
    d
      .insert(sessions)
      .values({
        id: sql.placeholder("id"),
        userId: sql.placeholder("userId"),
        tokenHash: sql.placeholder("tokenHash"),
        authenticatedAt: sql.placeholder("authenticatedAt"),
        lastSeenAt: sql.placeholder("lastSeenAt"),
        expiresAt: sql.placeholder("expiresAt"),
        idleExpiresAt: sql.placeholder("idleExpiresAt"),
        ip: sql.placeholder("ip"),
        userAgent: sql.placeholder("userAgent"),
        amr: sql.placeholder("amr"),
      })
      .returning()
      .prepare("session_insert_v2"),
  ).execute({ ...row, id: row.id ?? randomUUID() });
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** The audit row written with a fresh session (its `details` are never null: see queries/audit.ts). */
export type SessionAuditRow = Pick<
  typeof auditEvents.$inferInsert,
  "event" | "outcome" | "userId" | "actorId" | "clientId" | "ip" | "userAgent"
> & { details: Record<string, unknown> };

/**
 * A fresh session and the audit row that records it, written by one statement (two data-modifying CTEs): atomic with
 * no BEGIN/COMMIT around it, one round trip, where a transaction costs three. The audit row's session id is the new
 * session's. PostgreSQL runs both inserts to completion whatever the outer query reads.
 */
export async function insertSessionWithAudit(
  db: Executor,
  row: NewSession & { id: string },
  audit: SessionAuditRow,
): Promise<SessionRow> {
  const [created] = await prepared(db, "session_insert_audited", (d) => {
    const session = d.$with("created_session").as(
      d
        .insert(sessions)
        .values({
          id: sql.placeholder("id"),
          userId: sql.placeholder("userId"),
          tokenHash: sql.placeholder("tokenHash"),
          authenticatedAt: sql.placeholder("authenticatedAt"),
          lastSeenAt: sql.placeholder("lastSeenAt"),
          expiresAt: sql.placeholder("expiresAt"),
          idleExpiresAt: sql.placeholder("idleExpiresAt"),
          ip: sql.placeholder("ip"),
          userAgent: sql.placeholder("userAgent"),
          amr: sql.placeholder("amr"),
        })
        .returning(),
    );
    const logged = d.$with("session_audit").as(
      d
        .insert(auditEvents)
        .values({
          event: sql.placeholder("auditEvent"),
          outcome: sql.placeholder("auditOutcome"),
          userId: sql.placeholder("auditUserId"),
          actorId: sql.placeholder("auditActorId"),
          clientId: sql.placeholder("auditClientId"),
          sessionId: sql.placeholder("id"),
          ip: sql.placeholder("auditIp"),
          userAgent: sql.placeholder("auditUserAgent"),
          details: sql.placeholder("auditDetails"),
        })
        .returning({ id: auditEvents.id }),
    );
    return d.with(session, logged).select().from(session).prepare("session_insert_audited");
  }).execute({
    ...row,
    auditEvent: audit.event,
    auditOutcome: audit.outcome,
    auditUserId: audit.userId ?? null,
    auditActorId: audit.actorId ?? null,
    auditClientId: audit.clientId ?? null,
    auditIp: audit.ip ?? null,
    auditUserAgent: audit.userAgent ?? null,
    auditDetails: audit.details,
  });
  if (!created) throw new Error("insert returned no row");
  return created as SessionRow;
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
      and(eq(sessions.tokenHash, tokenHash), sessionIsLive(now), isNull(users.disabledAt), isNull(users.deletedAt)),
    )
    .limit(1);
  return row ?? null;
}

export async function findLiveSessionById(db: Executor, id: string, now: Date): Promise<SessionRow | null> {
  const [row] = await db
    .select()
    .from(sessions)
    .where(and(eq(sessions.id, id), sessionIsLive(now)))
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
    .where(and(eq(sessions.userId, userId), sessionIsLive(now)))
    .orderBy(desc(sessions.lastSeenAt));
}

/** Marks the matching unrevoked sessions revoked. Returns the ids this call revoked (none already revoked). */
export async function revokeSessionRows(
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
    .returning({ id: sessions.id });
  await notifySessionChange(
    db,
    revoked.map((r) => r.id),
  );
  return revoked.map((r) => r.id);
}

/** Marks every unrevoked refresh token of the given sessions revoked. */
export async function revokeRefreshTokensOfSessions(db: Executor, sessionIds: string[], now: Date): Promise<void> {
  if (sessionIds.length === 0) return;
  await db
    .update(refreshTokens)
    .set({ revokedAt: now })
    .where(and(inArray(refreshTokens.sessionId, sessionIds), isNull(refreshTokens.revokedAt)));
}

export interface SessionParticipant {
  sessionId: string;
  clientId: string;
  userId: string;
  logoutUri: string;
}

/**
 * The (session, client) pairs of the given sessions where the client holds a refresh token or was issued a code in
 * the session, and has a back-channel logout URI.
 */
export async function findBackchannelParticipants(db: Executor, sessionIds: string[]): Promise<SessionParticipant[]> {
  if (sessionIds.length === 0) return [];
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
  return rows
    .filter((r): r is typeof r & { logoutUri: string } => r.logoutUri !== null)
    .map((r) => ({ sessionId: r.sessionId, clientId: r.clientId, userId: r.userId, logoutUri: r.logoutUri }));
}

export async function insertBackchannelLogoutJobs(db: Executor, jobs: SessionParticipant[]): Promise<void> {
  if (jobs.length) await db.insert(backchannelLogoutJobs).values(jobs);
}
