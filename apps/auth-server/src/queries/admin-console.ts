import {
  accountThrottles,
  auditEvents,
  backchannelLogoutJobs,
  type Executor,
  refreshTokens,
  sessions,
  users,
} from "@tessera/db";
import { and, asc, count, eq, gt, gte, ilike, isNotNull, isNull, type SQL, sql } from "drizzle-orm";
import { sessionIsLive } from "./sessions.ts";

export type ConsoleUserRow = typeof users.$inferSelect;

const escapeLike = (value: string) => value.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * Users for the console's search: an exact id, or emails containing the text; ordered by email (unique) so `after`
 * (the last email of the previous page) pages by keyset. Deleted (anonymized) accounts are left out.
 */
export async function searchUsers(
  db: Executor,
  input: { id?: string | undefined; text?: string | undefined; after?: string | undefined; limit: number },
): Promise<ConsoleUserRow[]> {
  const where: SQL[] = [isNull(users.deletedAt)];
  if (input.id) where.push(eq(users.id, input.id));
  else if (input.text) where.push(ilike(users.email, `%${escapeLike(input.text)}%`));
  if (input.after) where.push(gt(users.email, input.after));
  return db
    .select()
    .from(users)
    .where(and(...where))
    .orderBy(asc(users.email))
    .limit(input.limit);
}

export interface OverviewCounts {
  users: number;
  activeSessions: number;
  signIns24h: number;
  signInFailures24h: number;
  refreshes24h: number;
  reuseDetections24h: number;
  backchannelQueue: number;
}

async function countOf(query: PromiseLike<Array<{ n: number }>>): Promise<number> {
  const [row] = await query;
  return Number(row?.n ?? 0);
}

const eventsSince = (db: Executor, event: string, since: Date) =>
  db
    .select({ n: count() })
    .from(auditEvents)
    .where(and(eq(auditEvents.event, event), gte(auditEvents.at, since)));

/** The overview's numbers; each one query over an index. */
export async function overviewCounts(db: Executor, now: Date, since: Date): Promise<OverviewCounts> {
  const [usersN, activeSessions, signIns24h, signInFailures24h, refreshes24h, reuseDetections24h, backchannelQueue] =
    await Promise.all([
      countOf(db.select({ n: count() }).from(users).where(isNull(users.deletedAt))),
      countOf(db.select({ n: count() }).from(sessions).where(sessionIsLive(now))),
      countOf(eventsSince(db, "user.signed_in", since)),
      countOf(eventsSince(db, "user.sign_in_failed", since)),
      countOf(
        db
          .select({ n: count() })
          .from(refreshTokens)
          .where(and(isNotNull(refreshTokens.parentId), gte(refreshTokens.createdAt, since))),
      ),
      countOf(eventsSince(db, "token.reuse_detected", since)),
      countOf(
        db
          .select({ n: count() })
          .from(backchannelLogoutJobs)
          .where(and(isNull(backchannelLogoutJobs.deliveredAt), isNull(backchannelLogoutJobs.abandonedAt))),
      ),
    ]);
  return {
    users: usersN,
    activeSessions,
    signIns24h,
    signInFailures24h,
    refreshes24h,
    reuseDetections24h,
    backchannelQueue,
  };
}

/** Successful sign-ins per hour since `since` (hours without any are absent). */
export async function signInsPerHour(db: Executor, since: Date): Promise<Array<{ hour: Date; n: number }>> {
  const hour = sql<string>`date_trunc('hour', ${auditEvents.at})`;
  const rows = await db
    .select({ hour, n: count() })
    .from(auditEvents)
    .where(and(eq(auditEvents.event, "user.signed_in"), gte(auditEvents.at, since)))
    .groupBy(hour);
  return rows.map((r) => ({ hour: new Date(r.hour), n: Number(r.n) }));
}

export type AccountThrottleRow = typeof accountThrottles.$inferSelect;

/** Account keys locked right now (the keys are HMACs of the email, so the console shows them with their counts). */
export async function lockedAccountKeys(db: Executor, now: Date, limit: number): Promise<AccountThrottleRow[]> {
  return db
    .select()
    .from(accountThrottles)
    .where(gt(accountThrottles.lockedUntil, now))
    .orderBy(asc(accountThrottles.lockedUntil))
    .limit(limit);
}

export async function deleteAccountThrottleKey(db: Executor, key: string): Promise<boolean> {
  const rows = await db
    .delete(accountThrottles)
    .where(eq(accountThrottles.key, key))
    .returning({ key: accountThrottles.key });
  return rows.length > 0;
}
