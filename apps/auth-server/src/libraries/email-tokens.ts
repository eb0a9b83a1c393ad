import type { Executor } from "@tessera/db";
import { AppError } from "../errors/index.ts";
import {
  consumeEmailToken,
  type EmailTokenPurpose,
  type EmailTokenRow,
  findUsableEmailToken,
  insertEmailToken,
  invalidateEmailTokens,
} from "../queries/email-tokens.ts";
import { addSeconds } from "./clock.ts";
import { randomToken, sha256 } from "./crypto.ts";

export type { EmailTokenPurpose, EmailTokenRow } from "../queries/email-tokens.ts";

/**
 * Email tokens (SECURITY.md): 256-bit CSPRNG values, stored as SHA-256 only, single use, short-lived, bound to one user
 * and one purpose. Issuing a token retires the user's older unused tokens of the same purpose, so only the newest link
 * works. The raw value is returned once, to be put in a link, and never stored or logged.
 */
export async function issueEmailToken(
  db: Executor,
  input: { userId: string; purpose: EmailTokenPurpose; ttlSeconds: number; now: Date; newEmail?: string },
): Promise<string> {
  const token = randomToken();
  await invalidateEmailTokens(db, input.userId, input.now, input.purpose);
  await insertEmailToken(db, {
    tokenHash: sha256(token),
    userId: input.userId,
    purpose: input.purpose,
    newEmail: input.newEmail ?? null,
    createdAt: input.now,
    expiresAt: addSeconds(input.now, input.ttlSeconds),
  });
  return token;
}

/** Token values are 43 base64url characters; anything else is rejected before touching the database. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** Looks a token up without using it (to show a confirmation page). Throws INVALID_TOKEN. */
export async function peekEmailToken(
  db: Executor,
  token: string,
  purposes: EmailTokenPurpose[],
  now: Date,
): Promise<EmailTokenRow> {
  const row = TOKEN_SHAPE.test(token) ? await findUsableEmailToken(db, sha256(token), purposes, now) : null;
  if (!row) throw new AppError("INVALID_TOKEN");
  return row;
}

/** Uses a token exactly once (atomic). Throws INVALID_TOKEN when unknown, used, expired or of another purpose. */
export async function useEmailToken(
  db: Executor,
  token: string,
  purpose: EmailTokenPurpose,
  now: Date,
): Promise<EmailTokenRow> {
  const row = TOKEN_SHAPE.test(token) ? await consumeEmailToken(db, sha256(token), purpose, now) : null;
  if (!row) throw new AppError("INVALID_TOKEN");
  return row;
}

/** Retires every unused token of the user (after a password change or reset, or on deletion). */
export async function retireEmailTokens(db: Executor, userId: string, now: Date, purpose?: EmailTokenPurpose) {
  await invalidateEmailTokens(db, userId, now, purpose);
}
