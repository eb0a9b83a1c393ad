import { apiKeys, type Executor, users } from "@tessera/db";
import { and, count, desc, eq, isNull, sql } from "drizzle-orm";
import { notifyUserChange } from "./owners-cache.ts";

export type AdminUserRow = typeof users.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;

/** Any value; creating an admin holds this transaction-scoped advisory lock so "is there an admin yet?" cannot race. */
const ADMIN_CREATION_LOCK_ID = 0x7e55e7d;

export async function lockAdminCreation(tx: Executor): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${ADMIN_CREATION_LOCK_ID})`);
}

export async function countAdmins(db: Executor): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(users)
    .where(and(eq(users.isAdmin, true), isNull(users.deletedAt)));
  return row?.n ?? 0;
}

export async function listAdmins(db: Executor): Promise<AdminUserRow[]> {
  return db
    .select()
    .from(users)
    .where(and(eq(users.isAdmin, true), isNull(users.disabledAt), isNull(users.deletedAt)))
    .orderBy(users.createdAt);
}

/** A user by normalized email (the unique index is on lower(email)). */
export async function findUserByNormalizedEmail(db: Executor, email: string): Promise<AdminUserRow | null> {
  const [row] = await db.select().from(users).where(sql`lower(${users.email}) = ${email}`).limit(1);
  return row ?? null;
}

export async function insertAdminUser(db: Executor, row: typeof users.$inferInsert): Promise<AdminUserRow> {
  const [created] = await db.insert(users).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

export async function updateAdminUser(
  db: Executor,
  id: string,
  values: Partial<typeof users.$inferInsert>,
): Promise<AdminUserRow | null> {
  const [row] = await db.update(users).set(values).where(eq(users.id, id)).returning();
  if (row) await notifyUserChange(db, id);
  return row ?? null;
}

export async function insertApiKey(db: Executor, row: typeof apiKeys.$inferInsert): Promise<ApiKeyRow> {
  const [created] = await db.insert(apiKeys).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** The live API key and its user for a key hash, only if the user is a live admin. */
export async function findAdminByApiKeyHash(
  db: Executor,
  keyHash: string,
): Promise<{ apiKey: ApiKeyRow; user: AdminUserRow } | null> {
  const [row] = await db
    .select({ apiKey: apiKeys, user: users })
    .from(apiKeys)
    .innerJoin(users, eq(users.id, apiKeys.userId))
    .where(
      and(
        eq(apiKeys.keyHash, keyHash),
        isNull(apiKeys.revokedAt),
        eq(users.isAdmin, true),
        isNull(users.disabledAt),
        isNull(users.deletedAt),
      ),
    )
    .limit(1);
  return row ?? null;
}

export async function touchApiKey(db: Executor, id: string, now: Date): Promise<void> {
  await db.update(apiKeys).set({ lastUsedAt: now }).where(eq(apiKeys.id, id));
}

export interface ApiKeyListRow {
  id: string;
  name: string;
  userId: string;
  ownerEmail: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** Every API key (never its hash), newest first, with its owner's email. */
export async function selectApiKeys(db: Executor, limit: number): Promise<ApiKeyListRow[]> {
  return db
    .select({
      id: apiKeys.id,
      name: apiKeys.name,
      userId: apiKeys.userId,
      ownerEmail: users.email,
      createdAt: apiKeys.createdAt,
      lastUsedAt: apiKeys.lastUsedAt,
      revokedAt: apiKeys.revokedAt,
    })
    .from(apiKeys)
    .innerJoin(users, eq(users.id, apiKeys.userId))
    .orderBy(desc(apiKeys.createdAt))
    .limit(limit);
}

/** Sets revoked_at once (a conditional UPDATE: revoking twice keeps the first time). Null when no such key. */
export async function markApiKeyRevoked(db: Executor, id: string, now: Date): Promise<ApiKeyRow | null> {
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning();
  if (row) return row;
  const [existing] = await db.select().from(apiKeys).where(eq(apiKeys.id, id)).limit(1);
  return existing ?? null;
}
