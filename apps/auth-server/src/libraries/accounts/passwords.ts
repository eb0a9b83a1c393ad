import { type AppContext, type Logger, quietLogger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { emailTokenIssuedSince } from "../../queries/email-tokens.ts";
import { deleteMfaChallenges } from "../../queries/totp.ts";
import { findUserByEmail, findUserById, type UserRow, updateUser } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { addSeconds } from "../clock.ts";
import { issueEmailToken, peekEmailToken, retireEmailTokens, useEmailToken } from "../email-tokens.ts";
import { sendInBackground } from "../mailer/index.ts";
import { accountEmail } from "../mailer/messages.ts";
import { checkPasswordAgain, emailOwnerOnLock } from "../password-step.ts";
import { hashPassword, passwordProblems } from "../passwords.ts";
import { endSessions, type SessionRow } from "../sessions.ts";
import { clearAccountThrottle } from "../throttle/failures.ts";
import { endAllSessions } from "./profile.ts";
import { responseFloor } from "./response-floor.ts";
import type { Continuation } from "./return-to.ts";

// Password reset and change

/**
 * Sends a reset link when the email has an account; does nothing visible otherwise. The answer is the same either
 * way; the email goes out in the background.
 */
export async function requestPasswordReset(
  ctx: AppContext,
  log: Logger,
  input: { email: string; meta: RequestMeta; continuation?: Continuation },
): Promise<void> {
  const floor = responseFloor(ctx);
  try {
    await issueResetLink(ctx, log, input);
  } finally {
    await floor();
  }
}

const RESET_EMAIL_INTERVAL_SECONDS = 60;

async function issueResetLink(
  ctx: AppContext,
  log: Logger,
  input: { email: string; meta: RequestMeta; continuation?: Continuation },
): Promise<void> {
  const user = await findUserByEmail(ctx.db, input.email);
  if (!user || user.disabledAt) return;
  // At most one reset email per account per minute: the per-IP request limit alone would let many addresses fill one
  // mailbox. The answer is the same either way, and the link sent a moment ago still works.
  const now = ctx.clock.now();
  if (await emailTokenIssuedSince(ctx.db, user.id, "reset_password", addSeconds(now, -RESET_EMAIL_INTERVAL_SECONDS))) {
    return;
  }
  const token = await ctx.db.transaction(async (tx) => {
    const token = await issueEmailToken(tx, {
      userId: user.id,
      purpose: "reset_password",
      ttlSeconds: ctx.config.tokens.passwordResetTtlSeconds,
      now,
    });
    await audit(tx, input.meta, { event: "user.password_reset_requested", outcome: "success", userId: user.id });
    return token;
  });
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "reset_password",
      to: user.email,
      token,
      continuation: input.continuation,
      locale: user.locale,
      requestLocale: input.meta.locale,
    }),
    log,
  );
}

/** Checks a reset link is usable (for the form page). Throws INVALID_TOKEN. */
export async function checkResetToken(ctx: AppContext, token: string): Promise<void> {
  await peekEmailToken(ctx.db, token, ["reset_password"], ctx.clock.now());
}

/**
 * Sets a new password from a reset link and ends every session of the user (every app signs out). Using the link
 * also proves the address, so it is marked verified. The link works once; every other open link of the user dies too.
 */
export async function resetPassword(
  ctx: AppContext,
  log: Logger,
  input: { token: string; password: string; meta: RequestMeta },
): Promise<UserRow> {
  const now = ctx.clock.now();
  const row = await peekEmailToken(ctx.db, input.token, ["reset_password"], now);
  const current = await findUserById(ctx.db, row.userId);
  if (!current) throw new AppError("INVALID_TOKEN");
  const problems = passwordProblems(ctx.config.passwords, input.password, "password", [
    current.email,
    current.email.split("@")[0],
    current.displayName,
  ]);
  if (problems.length) throw new AppError("WEAK_PASSWORD", problems[0]?.message, problems);
  const passwordHash = await hashPassword(ctx.config.passwords, input.password);
  const user = await ctx.db.transaction(async (tx) => {
    const used = await useEmailToken(tx, input.token, "reset_password", now);
    const updated = await updateUser(tx, used.userId, {
      passwordHash,
      passwordChangedAt: now,
      emailVerifiedAt: current.emailVerifiedAt ?? now,
      updatedAt: now,
    });
    if (!updated) throw new AppError("INVALID_TOKEN");
    await retireEmailTokens(tx, updated.id, now);
    // A second step waiting on the old password must not finish into a session after the reset.
    await deleteMfaChallenges(tx, updated.id);
    await endAllSessions(ctx, tx, input.meta, updated.id, "password_reset");
    await audit(tx, input.meta, { event: "user.password_reset", outcome: "success", userId: updated.id });
    return updated;
  });
  // A reset link proves the mailbox: it also ends a lock from failed password sign-ins (an attacker guessing cannot
  // keep the owner out). It proves nothing about the second factor, so wrong codes stay counted: otherwise whoever
  // reads the mailbox could reset, guess codes until the lock, and reset again.
  await clearAccountThrottle(ctx, user.email);
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "password_changed",
      to: user.email,
      locale: user.locale,
      requestLocale: input.meta.locale,
    }),
    log,
  );
  return user;
}

/**
 * Changes the password (needs the current one). Every other session of the user ends; the current one stays. Open
 * reset and email links of the user stop working.
 */
export async function changePassword(
  ctx: AppContext,
  log: Logger,
  input: { user: UserRow; session: SessionRow; currentPassword: string; newPassword: string; meta: RequestMeta },
): Promise<void> {
  await checkCurrentPassword(ctx, { user: input.user, plain: input.currentPassword, meta: input.meta, log });
  const problems = passwordProblems(ctx.config.passwords, input.newPassword, "newPassword", [
    input.user.email,
    input.user.email.split("@")[0],
    input.user.displayName,
  ]);
  if (problems.length) throw new AppError("WEAK_PASSWORD", problems[0]?.message, problems);
  const passwordHash = await hashPassword(ctx.config.passwords, input.newPassword);
  const now = ctx.clock.now();
  await ctx.db.transaction(async (tx) => {
    await updateUser(tx, input.user.id, { passwordHash, passwordChangedAt: now, updatedAt: now });
    await retireEmailTokens(tx, input.user.id, now);
    await deleteMfaChallenges(tx, input.user.id);
    const ended = await endSessions(ctx, tx, { userId: input.user.id, exceptId: input.session.id }, "password_changed");
    for (const id of ended) {
      await audit(tx, input.meta, {
        event: "session.ended",
        outcome: "success",
        userId: input.user.id,
        sessionId: id,
        details: { reason: "password_changed" },
      });
    }
    await audit(tx, input.meta, {
      event: "user.password_changed",
      outcome: "success",
      userId: input.user.id,
      sessionId: input.session.id,
    });
  });
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "password_changed",
      to: input.user.email,
      locale: input.user.locale,
      requestLocale: input.meta.locale,
    }),
    log,
  );
}

/**
 * Throws INVALID_CREDENTIALS (on the `currentPassword` field) unless the password is the user's current one. Counted
 * and throttled like a sign-in (`checkPasswordAgain`); a failure that locks the account emails the owner.
 */
export async function checkCurrentPassword(
  ctx: AppContext,
  input: { user: UserRow; plain: string; meta: RequestMeta; log?: Logger | undefined },
): Promise<void> {
  await checkPasswordAgain(ctx, {
    user: input.user,
    password: input.plain,
    meta: input.meta,
    field: "currentPassword",
    onLocked: emailOwnerOnLock(ctx, input.log ?? quietLogger, input.meta),
  });
}
