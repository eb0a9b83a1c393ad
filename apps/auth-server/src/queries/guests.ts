import { type Executor, sessions, users } from "@tessera/db";
import { and, eq, gte, lt, sql } from "drizzle-orm";
import { notifyAllChange, notifyUserChange } from "./owners-cache.ts";
import { isUniqueViolation, type UserRow } from "./users.ts";

/** A guest account: no password, an address under the reserved `.invalid` TLD (RFC 2606) that no mail reaches. */
export async function insertGuestUser(db: Executor, row: { id: string; email: string; now: Date }): Promise<UserRow> {
  const [created] = await db
    .insert(users)
    .values({ id: row.id, email: row.email, isAnonymous: true, createdAt: row.now, updatedAt: row.now })
    .returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

export type UpgradeResult = { user: UserRow } | "not_a_guest" | "email_in_use";

/**
 * Turns a guest into a full account in place (same id, so the same `sub`): one conditional UPDATE on `is_anonymous`,
 * so of two racing upgrades exactly one matches (the other waits for the row lock, then matches nothing). An email
 * taken meanwhile by anyone is refused by the unique index (SQLSTATE 23505): the caller's transaction must roll back.
 */
export async function upgradeGuestUser(
  db: Executor,
  id: string,
  values: { email: string; passwordHash: string; now: Date },
): Promise<UpgradeResult> {
  try {
    const [row] = await db
      .update(users)
      .set({
        email: values.email,
        passwordHash: values.passwordHash,
        passwordChangedAt: values.now,
        isAnonymous: false,
        updatedAt: values.now,
      })
      .where(and(eq(users.id, id), eq(users.isAnonymous, true)))
      .returning();
    if (row) await notifyUserChange(db, id);
    return row ? { user: row } : "not_a_guest";
  } catch (error) {
    if (isUniqueViolation(error)) return "email_in_use";
    throw error;
  }
}

export async function deleteGuestUser(db: Executor, id: string): Promise<boolean> {
  const rows = await db
    .delete(users)
    .where(and(eq(users.id, id), eq(users.isAnonymous, true)))
    .returning({ id: users.id });
  if (rows.length > 0) await notifyUserChange(db, id);
  return rows.length > 0;
}

/**
 * Deletes at most `limit` guests idle since `cutoff`: created before it and with no session seen since (a refresh
 * counts as activity: it moves the session's last_seen_at). Their sessions and tokens go with them (cascade).
 */
export async function deleteIdleGuestsBatch(db: Executor, cutoff: Date, limit: number): Promise<number> {
  const active = db
    .select({ one: sql`1` })
    .from(sessions)
    .where(and(eq(sessions.userId, users.id), gte(sessions.lastSeenAt, cutoff)));
  const batch = db
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.isAnonymous, true), lt(users.createdAt, cutoff), sql`not exists (${active})`))
    .limit(limit);
  const deleted = await db.delete(users).where(sql`${users.id} = any(array(${batch}))`).returning({ id: users.id });
  if (deleted.length > 0) await notifyAllChange(db);
  return deleted.length;
}
