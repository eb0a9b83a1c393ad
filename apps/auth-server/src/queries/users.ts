import {
  apiKeys,
  type Executor,
  emailTokens,
  mfaChallenges,
  passkeyChallenges,
  passkeys,
  recoveryCodes,
  sessions,
  totpFactors,
  users,
} from "@tessera/db";
import { and, eq, isNull, sql } from "drizzle-orm";
import { notifyUserChange } from "./owners-cache.ts";
import { prepared } from "./prepared.ts";

/** A users row: the one declaration (queries/sessions.ts still has its own copy, outside this refactor). */
export type UserRow = typeof users.$inferSelect;

/** Emails are stored normalized (see `normalizeEmail` in libraries/throttle/keys.ts); the lookup lower-cases as well. */
export async function findUserByEmail(db: Executor, email: string): Promise<UserRow | null> {
  const [row] = await prepared(db, "user_by_email", (d) =>
    d
      .select()
      .from(users)
      .where(and(sql`lower(${users.email}) = lower(${sql.placeholder("email")})`, isNull(users.deletedAt)))
      .limit(1)
      .prepare("user_by_email"),
  ).execute({ email });
  return row ?? null;
}

/**
 * `findUserByEmail`'s user and whether it has a second factor (a confirmed TOTP factor or a passkey: the tests of
 * `confirmedTotpExists` and `passkeyExists`), read by one statement. The password step needs both.
 */
export async function findUserByEmailForSignIn(
  db: Executor,
  email: string,
): Promise<{ user: UserRow; hasSecondFactor: boolean } | null> {
  const [row] = await prepared(db, "user_by_email_sign_in", (d) =>
    d
      .select({
        user: users,
        // Qualified by hand: in a one-table select Drizzle writes columns without their table, and an unqualified
        // "id" in the subqueries would name the subquery's own table.
        hasSecondFactor: sql<boolean>`(exists (select 1 from "totp_factors" t where t."user_id" = "users"."id"
          and t."confirmed_at" is not null)
          or exists (select 1 from "passkeys" p where p."user_id" = "users"."id"))`,
      })
      .from(users)
      .where(and(sql`lower(${users.email}) = lower(${sql.placeholder("email")})`, isNull(users.deletedAt)))
      .limit(1)
      .prepare("user_by_email_sign_in"),
  ).execute({ email });
  return row ? { user: row.user, hasSecondFactor: row.hasSecondFactor === true } : null;
}

export async function findUserById(db: Executor, id: string): Promise<UserRow | null> {
  const [row] = await db
    .select()
    .from(users)
    .where(and(eq(users.id, id), isNull(users.deletedAt)))
    .limit(1);
  return row ?? null;
}

/**
 * Inserts a user unless the email is taken (by a concurrent registration, say); returns null in that case rather
 * than failing, so the caller can answer exactly as for any other existing email.
 */
export async function insertUser(
  db: Executor,
  row: { email: string; passwordHash: string; displayName: string | null; now: Date },
): Promise<UserRow | null> {
  const [created] = await db
    .insert(users)
    .values({
      email: row.email,
      passwordHash: row.passwordHash,
      displayName: row.displayName,
      passwordChangedAt: row.now,
      createdAt: row.now,
      updatedAt: row.now,
    })
    .onConflictDoNothing()
    .returning();
  return created ?? null;
}

export async function updateUser(
  db: Executor,
  id: string,
  values: Partial<
    Pick<UserRow, "email" | "emailVerifiedAt" | "passwordHash" | "passwordChangedAt" | "displayName" | "locale">
  > & {
    updatedAt: Date;
  },
): Promise<UserRow | null> {
  const [row] = await db
    .update(users)
    .set(values)
    .where(and(eq(users.id, id), isNull(users.deletedAt)))
    .returning();
  if (row) await notifyUserChange(db, id);
  return row ?? null;
}

/**
 * Sets a new email unless another account holds it. Returns null when the unique index refuses it: a concurrent change
 * or registration to the same address can commit between the caller's check and this update (PostgreSQL then answers
 * SQLSTATE 23505, wrapped by drizzle). The caller's transaction is aborted by then and must be rolled back.
 */
export async function changeUserEmail(db: Executor, id: string, email: string, now: Date): Promise<UserRow | null> {
  try {
    return await updateUser(db, id, { email, emailVerifiedAt: now, updatedAt: now });
  } catch (error) {
    if (isUniqueViolation(error)) return null;
    throw error;
  }
}

export function isUniqueViolation(error: unknown): boolean {
  for (
    let e = error, depth = 0;
    e && typeof e === "object" && depth < 4;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    if ((e as { code?: unknown }).code === "23505") return true;
  }
  return false;
}

/** Replaces the stored hash only if it is still the one that was verified (a concurrent change wins). */
export async function replacePasswordHash(db: Executor, id: string, oldHash: string, newHash: string): Promise<void> {
  await db
    .update(users)
    .set({ passwordHash: newHash })
    .where(and(eq(users.id, id), eq(users.passwordHash, oldHash)));
}

export async function isEmailTaken(db: Executor, email: string, exceptUserId?: string): Promise<boolean> {
  const [row] = await db
    .select({ id: users.id })
    .from(users)
    .where(sql`lower(${users.email}) = lower(${email})`)
    .limit(1);
  return Boolean(row && row.id !== exceptUserId);
}

/**
 * Anonymizes a deleted account: the email is replaced by a unique placeholder (the unique index stays unconditional
 * and the address can register again), name and password hash are dropped, pending email tokens, second factors and
 * API keys are deleted and the IP/user agent of its sessions are cleared. Audit rows keep only the user id, never the email.
 */
export async function anonymizeUser(db: Executor, id: string, now: Date): Promise<boolean> {
  const [row] = await db
    .update(users)
    .set({
      email: `deleted-${id}@deleted.invalid`,
      emailVerifiedAt: null,
      passwordHash: null,
      displayName: null,
      deletedAt: now,
      updatedAt: now,
    })
    .where(and(eq(users.id, id), isNull(users.deletedAt)))
    .returning({ id: users.id });
  if (!row) return false;
  await notifyUserChange(db, id);
  await db.delete(emailTokens).where(eq(emailTokens.userId, id));
  // Second factors, pending second steps and API keys go too: nothing can sign in as a deleted account.
  await db.delete(totpFactors).where(eq(totpFactors.userId, id));
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, id));
  await db.delete(mfaChallenges).where(eq(mfaChallenges.userId, id));
  await db.delete(passkeys).where(eq(passkeys.userId, id));
  await db.delete(passkeyChallenges).where(eq(passkeyChallenges.userId, id));
  await db.delete(apiKeys).where(eq(apiKeys.userId, id));
  await db.update(sessions).set({ ip: null, userAgent: null }).where(eq(sessions.userId, id));
  return true;
}
