import { type Executor, mfaChallenges, recoveryCodes, totpFactors, users } from "@tessera/db";
import { and, eq, gt, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import { prepared } from "./prepared.ts";

export type TotpFactorRow = typeof totpFactors.$inferSelect;
export type MfaChallengeRow = typeof mfaChallenges.$inferSelect;

export async function findTotpFactor(db: Executor, userId: string): Promise<TotpFactorRow | null> {
  const [row] = await db.select().from(totpFactors).where(eq(totpFactors.userId, userId)).limit(1);
  return row ?? null;
}

/** Whether the user has a confirmed TOTP factor (without reading the secret). */
export async function confirmedTotpExists(db: Executor, userId: string): Promise<boolean> {
  const [row] = await prepared(db, "totp_confirmed_exists", (d) =>
    d
      .select({ userId: totpFactors.userId })
      .from(totpFactors)
      .where(and(eq(totpFactors.userId, sql.placeholder("userId")), isNotNull(totpFactors.confirmedAt)))
      .limit(1)
      .prepare("totp_confirmed_exists"),
  ).execute({ userId });
  return Boolean(row);
}

/**
 * Stores a new, unconfirmed secret for the user, replacing an earlier unconfirmed one. Returns null (and changes
 * nothing) when the user already has a confirmed factor.
 */
export async function upsertPendingTotpFactor(
  db: Executor,
  userId: string,
  secretEncrypted: string,
  now: Date,
): Promise<TotpFactorRow | null> {
  const [row] = await db
    .insert(totpFactors)
    .values({ userId, secretEncrypted, createdAt: now })
    .onConflictDoUpdate({
      target: totpFactors.userId,
      set: { secretEncrypted, createdAt: now, lastUsedStep: null },
      setWhere: isNull(totpFactors.confirmedAt),
    })
    .returning();
  return row ?? null;
}

/**
 * Marks a time step as used, only if it is later than the last one used: the conditional UPDATE is what rejects a
 * replayed code, atomically, even for parallel requests. `confirming` picks the unconfirmed factor (and confirms it)
 * instead of the confirmed one.
 */
export async function useTotpStep(
  db: Executor,
  input: { userId: string; step: number; now: Date; confirming: boolean },
): Promise<TotpFactorRow | null> {
  const [row] = await db
    .update(totpFactors)
    .set({ lastUsedStep: input.step, ...(input.confirming ? { confirmedAt: input.now } : {}) })
    .where(
      and(
        eq(totpFactors.userId, input.userId),
        input.confirming ? isNull(totpFactors.confirmedAt) : isNotNull(totpFactors.confirmedAt),
        or(isNull(totpFactors.lastUsedStep), lt(totpFactors.lastUsedStep, input.step)),
      ),
    )
    .returning();
  return row ?? null;
}

export async function deleteTotpFactor(db: Executor, userId: string): Promise<boolean> {
  const deleted = await db
    .delete(totpFactors)
    .where(eq(totpFactors.userId, userId))
    .returning({ id: totpFactors.userId });
  return deleted.length > 0;
}

export async function replaceRecoveryCodes(db: Executor, userId: string, hashes: string[], now: Date): Promise<void> {
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  if (hashes.length) {
    await db.insert(recoveryCodes).values(hashes.map((codeHash) => ({ userId, codeHash, createdAt: now })));
  }
}

export async function deleteRecoveryCodes(db: Executor, userId: string): Promise<void> {
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
}

/** Uses a recovery code once: the conditional UPDATE makes a second (or parallel) use find nothing. */
export async function useRecoveryCode(db: Executor, userId: string, codeHash: string, now: Date): Promise<boolean> {
  const used = await db
    .update(recoveryCodes)
    .set({ usedAt: now })
    .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, codeHash), isNull(recoveryCodes.usedAt)))
    .returning({ id: recoveryCodes.id });
  return used.length > 0;
}

export async function countUnusedRecoveryCodes(db: Executor, userId: string): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(recoveryCodes)
    .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)));
  return Number(row?.n ?? 0);
}

export async function insertMfaChallenge(
  db: Executor,
  row: { tokenHash: string; userId: string; createdAt: Date; expiresAt: Date },
): Promise<MfaChallengeRow> {
  const [created] = await db.insert(mfaChallenges).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** A challenge that is unused and unexpired, with its user's email (for throttling by account). */
export async function findLiveMfaChallenge(
  db: Executor,
  tokenHash: string,
  now: Date,
): Promise<{ challenge: MfaChallengeRow; email: string } | null> {
  const [row] = await db
    .select({ challenge: mfaChallenges, email: users.email })
    .from(mfaChallenges)
    .innerJoin(users, eq(users.id, mfaChallenges.userId))
    .where(
      and(
        eq(mfaChallenges.tokenHash, tokenHash),
        isNull(mfaChallenges.usedAt),
        gt(mfaChallenges.expiresAt, now),
        isNull(users.disabledAt),
        isNull(users.deletedAt),
      ),
    )
    .limit(1);
  return row ?? null;
}

/** Counts one guess, atomically, only while fewer than `max` were made. Null once the challenge is spent. */
export async function countMfaChallengeAttempt(
  db: Executor,
  id: string,
  max: number,
  now: Date,
): Promise<MfaChallengeRow | null> {
  const [row] = await db
    .update(mfaChallenges)
    .set({ attempts: sql`${mfaChallenges.attempts} + 1` })
    .where(
      and(
        eq(mfaChallenges.id, id),
        isNull(mfaChallenges.usedAt),
        gt(mfaChallenges.expiresAt, now),
        lt(mfaChallenges.attempts, max),
      ),
    )
    .returning();
  return row ?? null;
}

/** Single use: marks the challenge used unless something else already did. */
export async function consumeMfaChallenge(db: Executor, id: string, now: Date): Promise<boolean> {
  const used = await db
    .update(mfaChallenges)
    .set({ usedAt: now })
    .where(and(eq(mfaChallenges.id, id), isNull(mfaChallenges.usedAt)))
    .returning({ id: mfaChallenges.id });
  return used.length > 0;
}

/** Deletes the user's half-finished sign-ins (after a password reset or change: the password they proved is gone). */
export async function deleteMfaChallenges(db: Executor, userId: string): Promise<void> {
  await db.delete(mfaChallenges).where(eq(mfaChallenges.userId, userId));
}
