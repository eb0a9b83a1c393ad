import { type Executor, emailTokens } from "@tessera/db";
import { and, eq, gt, isNull } from "drizzle-orm";

export type EmailTokenRow = typeof emailTokens.$inferSelect;
export type EmailTokenPurpose = EmailTokenRow["purpose"];

export async function insertEmailToken(db: Executor, row: typeof emailTokens.$inferInsert): Promise<EmailTokenRow> {
  const [created] = await db.insert(emailTokens).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** Marks every unused token of a user (for one purpose, or all) as used: a newer token or a password change wins. */
export async function invalidateEmailTokens(
  db: Executor,
  userId: string,
  now: Date,
  purpose?: EmailTokenPurpose,
): Promise<void> {
  const conditions = [eq(emailTokens.userId, userId), isNull(emailTokens.usedAt)];
  if (purpose) conditions.push(eq(emailTokens.purpose, purpose));
  await db
    .update(emailTokens)
    .set({ usedAt: now })
    .where(and(...conditions));
}

/** An unused, unexpired token of that purpose, without consuming it (for the confirmation page). */
export async function findUsableEmailToken(
  db: Executor,
  tokenHash: string,
  purposes: EmailTokenPurpose[],
  now: Date,
): Promise<EmailTokenRow | null> {
  const [row] = await db
    .select()
    .from(emailTokens)
    .where(and(eq(emailTokens.tokenHash, tokenHash), isNull(emailTokens.usedAt), gt(emailTokens.expiresAt, now)))
    .limit(1);
  return row && purposes.includes(row.purpose) ? row : null;
}

/**
 * Consumes a token atomically: a conditional UPDATE ... RETURNING, so two parallel uses of one link produce exactly
 * one winner. Returns null when the token is unknown, used, expired or of another purpose.
 */
export async function consumeEmailToken(
  db: Executor,
  tokenHash: string,
  purpose: EmailTokenPurpose,
  now: Date,
): Promise<EmailTokenRow | null> {
  const [row] = await db
    .update(emailTokens)
    .set({ usedAt: now })
    .where(
      and(
        eq(emailTokens.tokenHash, tokenHash),
        eq(emailTokens.purpose, purpose),
        isNull(emailTokens.usedAt),
        gt(emailTokens.expiresAt, now),
      ),
    )
    .returning();
  return row ?? null;
}

/** Whether a token of that purpose was issued to the user after `since` (used or not). */
export async function emailTokenIssuedSince(
  db: Executor,
  userId: string,
  purpose: EmailTokenPurpose,
  since: Date,
): Promise<boolean> {
  const [row] = await db
    .select({ id: emailTokens.tokenHash })
    .from(emailTokens)
    .where(and(eq(emailTokens.userId, userId), eq(emailTokens.purpose, purpose), gt(emailTokens.createdAt, since)))
    .limit(1);
  return Boolean(row);
}
