import { type Executor, users } from "@tessera/db";
import { and, eq, isNotNull, isNull } from "drizzle-orm";
import { notifyUserChange } from "./owners-cache.ts";
import type { UserRow } from "./users.ts";

/** Re-exported for routes/admin/users.ts; declared once, in queries/users.ts. */
export type { UserRow };

/** A user by id, unless deleted (a deleted account is anonymized and cannot be managed any more). */
export async function findManageableUser(db: Executor, id: string): Promise<UserRow | null> {
  const [row] = await db
    .select()
    .from(users)
    .where(and(eq(users.id, id), isNull(users.deletedAt)))
    .limit(1);
  return row ?? null;
}

/** Sets disabled_at if the user is not disabled yet: one conditional UPDATE, so of two concurrent calls one wins. */
export async function markUserDisabled(db: Executor, id: string, now: Date): Promise<UserRow | null> {
  const [row] = await db
    .update(users)
    .set({ disabledAt: now, updatedAt: now })
    .where(and(eq(users.id, id), isNull(users.disabledAt), isNull(users.deletedAt)))
    .returning();
  if (row) await notifyUserChange(db, id);
  return row ?? null;
}

/** Clears disabled_at if set. */
export async function markUserEnabled(db: Executor, id: string, now: Date): Promise<UserRow | null> {
  const [row] = await db
    .update(users)
    .set({ disabledAt: null, updatedAt: now })
    .where(and(eq(users.id, id), isNotNull(users.disabledAt), isNull(users.deletedAt)))
    .returning();
  return row ?? null;
}
