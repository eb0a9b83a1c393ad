import { type Executor, signingKeys } from "@tessera/db";
import { and, asc, desc, eq, gt, isNotNull, isNull, or, sql } from "drizzle-orm";

export type SigningKeyRow = typeof signingKeys.$inferSelect;
export type SigningAlg = SigningKeyRow["alg"];

/** Any value; creating or rotating signing keys holds this transaction-scoped advisory lock (one writer at a time). */
const SIGNING_KEYS_LOCK_ID = 0x7e55e7b;

/** Serializes key creation and rotation across instances until the surrounding transaction ends. */
export async function lockSigningKeys(tx: Executor): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${SIGNING_KEYS_LOCK_ID})`);
}

export async function insertSigningKey(db: Executor, row: typeof signingKeys.$inferInsert): Promise<SigningKeyRow> {
  const [created] = await db.insert(signingKeys).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** The key currently used to sign with this algorithm, if any. */
export async function findActiveSigningKey(db: Executor, alg: SigningAlg): Promise<SigningKeyRow | null> {
  const [row] = await db
    .select()
    .from(signingKeys)
    .where(and(eq(signingKeys.alg, alg), isNotNull(signingKeys.activatedAt), isNull(signingKeys.retiredAt)))
    .orderBy(desc(signingKeys.activatedAt))
    .limit(1);
  return row ?? null;
}

export async function retireActiveSigningKeys(db: Executor, alg: SigningAlg, now: Date): Promise<string[]> {
  const rows = await db
    .update(signingKeys)
    .set({ retiredAt: now })
    .where(and(eq(signingKeys.alg, alg), isNull(signingKeys.retiredAt)))
    .returning({ kid: signingKeys.kid });
  return rows.map((r) => r.kid);
}

/** Keys that are active, or were retired after `retiredAfter` (still published for tokens they signed). */
export async function selectLiveSigningKeys(db: Executor, retiredAfter: Date): Promise<SigningKeyRow[]> {
  return db
    .select()
    .from(signingKeys)
    .where(or(isNull(signingKeys.retiredAt), gt(signingKeys.retiredAt, retiredAfter)))
    .orderBy(desc(signingKeys.createdAt));
}

export async function selectAllSigningKeys(db: Executor): Promise<SigningKeyRow[]> {
  return db.select().from(signingKeys).orderBy(asc(signingKeys.createdAt));
}
