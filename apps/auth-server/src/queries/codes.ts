import { authorizationCodes, type Executor, refreshTokens, sessions, users } from "@tessera/db";
import { and, eq, gt, isNull } from "drizzle-orm";
import { revokeClientChain } from "./refresh-tokens.ts";

export type AuthorizationCodeRow = typeof authorizationCodes.$inferSelect;

export async function insertAuthorizationCode(
  db: Executor,
  row: typeof authorizationCodes.$inferInsert,
): Promise<AuthorizationCodeRow> {
  const [created] = await db.insert(authorizationCodes).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/**
 * Redeems a code: one conditional UPDATE, so of N parallel redemptions exactly one gets the row back. Run it in the
 * transaction that issues the tokens, so the row lock is held until they are written: a concurrent redemption waits,
 * then sees the code consumed and can revoke what this one issued.
 */
export async function consumeAuthorizationCode(
  db: Executor,
  codeHash: string,
  now: Date,
): Promise<AuthorizationCodeRow | null> {
  const [row] = await db
    .update(authorizationCodes)
    .set({ consumedAt: now })
    .where(
      and(
        eq(authorizationCodes.codeHash, codeHash),
        isNull(authorizationCodes.consumedAt),
        gt(authorizationCodes.expiresAt, now),
      ),
    )
    .returning();
  return row ?? null;
}

export async function findAuthorizationCodeByHash(
  db: Executor,
  codeHash: string,
): Promise<AuthorizationCodeRow | null> {
  const [row] = await db.select().from(authorizationCodes).where(eq(authorizationCodes.codeHash, codeHash)).limit(1);
  return row ?? null;
}

/**
 * Revokes every refresh token issued from a code and every token rotated from them (same session and client). Run it
 * in a transaction (it takes the session lock).
 */
export async function revokeTokensIssuedFromCode(db: Executor, code: AuthorizationCodeRow, now: Date): Promise<number> {
  const issued = await db
    .select({ id: refreshTokens.id })
    .from(refreshTokens)
    .where(eq(refreshTokens.authorizationCodeId, code.id));
  if (issued.length === 0) return 0;
  // A chain never leaves its session and client, so revoking the client's tokens in that session covers successors.
  return revokeClientChain(db, code.sessionId, code.clientId, now);
}

/** A session and its user, whatever their state (callers check revocation, expiry and disabled accounts). */
export async function findSessionWithUser(
  db: Executor,
  sessionId: string,
): Promise<{ session: typeof sessions.$inferSelect; user: typeof users.$inferSelect } | null> {
  const [row] = await db
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, sessionId))
    .limit(1);
  return row ?? null;
}
