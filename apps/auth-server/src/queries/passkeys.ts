import { type Executor, passkeyChallenges, passkeys } from "@tessera/db";
import { and, asc, eq, gt, isNull, sql } from "drizzle-orm";
import { prepared } from "./prepared.ts";

export type PasskeyRow = typeof passkeys.$inferSelect;
export type PasskeyChallengeRow = typeof passkeyChallenges.$inferSelect;

export async function listPasskeys(db: Executor, userId: string): Promise<PasskeyRow[]> {
  return db.select().from(passkeys).where(eq(passkeys.userId, userId)).orderBy(asc(passkeys.createdAt));
}

export async function passkeyExists(db: Executor, userId: string): Promise<boolean> {
  const [row] = await prepared(db, "passkey_exists", (d) =>
    d
      .select({ id: passkeys.id })
      .from(passkeys)
      .where(eq(passkeys.userId, sql.placeholder("userId")))
      .limit(1)
      .prepare("passkey_exists"),
  ).execute({ userId });
  return Boolean(row);
}

export async function findPasskeyByCredentialId(db: Executor, credentialId: string): Promise<PasskeyRow | null> {
  const [row] = await db.select().from(passkeys).where(eq(passkeys.credentialId, credentialId)).limit(1);
  return row ?? null;
}

/** Inserts a credential; null when the credential id is already registered (to anyone). */
export async function insertPasskey(db: Executor, values: typeof passkeys.$inferInsert): Promise<PasskeyRow | null> {
  const [row] = await db.insert(passkeys).values(values).onConflictDoNothing().returning();
  return row ?? null;
}

/**
 * Records a use: the counter moves from exactly `expectedCounter` to `newCounter` (compare-and-set, so of two
 * assertions carrying the same counter only one can win). False when the row changed in between.
 */
export async function recordPasskeyUse(
  db: Executor,
  input: { id: string; expectedCounter: number; newCounter: number; backedUp: boolean; now: Date },
): Promise<boolean> {
  const rows = await db
    .update(passkeys)
    .set({ counter: input.newCounter, backedUp: input.backedUp, lastUsedAt: input.now })
    .where(and(eq(passkeys.id, input.id), eq(passkeys.counter, input.expectedCounter)))
    .returning({ id: passkeys.id });
  return rows.length > 0;
}

export async function renamePasskey(db: Executor, userId: string, id: string, name: string): Promise<boolean> {
  const rows = await db
    .update(passkeys)
    .set({ name })
    .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
    .returning({ id: passkeys.id });
  return rows.length > 0;
}

export async function deletePasskey(db: Executor, userId: string, id: string): Promise<PasskeyRow | null> {
  const [row] = await db
    .delete(passkeys)
    .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
    .returning();
  return row ?? null;
}

export async function insertPasskeyChallenge(
  db: Executor,
  values: typeof passkeyChallenges.$inferInsert,
): Promise<void> {
  await db.insert(passkeyChallenges).values(values);
}

/**
 * Spends a live challenge of this purpose, atomically (`used_at` set once): the row, or null when it is unknown,
 * expired, already used or for something else. Spent before the response is checked, so a failed try burns it too.
 */
export async function consumePasskeyChallenge(
  db: Executor,
  input: { tokenHash: string; purpose: string; now: Date },
): Promise<PasskeyChallengeRow | null> {
  const [row] = await db
    .update(passkeyChallenges)
    .set({ usedAt: input.now })
    .where(
      and(
        eq(passkeyChallenges.tokenHash, input.tokenHash),
        eq(passkeyChallenges.purpose, input.purpose),
        isNull(passkeyChallenges.usedAt),
        gt(passkeyChallenges.expiresAt, input.now),
      ),
    )
    .returning();
  return row ?? null;
}
