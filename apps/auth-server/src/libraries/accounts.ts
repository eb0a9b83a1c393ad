import type { Executor } from "@tessera/db";
import { z } from "zod";
import { type AppContext, type Logger, quietLogger } from "../context.ts";
import { AppError } from "../errors/index.ts";
import { emailTokenIssuedSince } from "../queries/email-tokens.ts";
import { deleteMfaChallenges } from "../queries/totp.ts";
import {
  anonymizeUser,
  changeUserEmail,
  findUserByEmail,
  findUserById,
  insertUser,
  isEmailTaken,
  type UserRow,
  updateUser,
} from "../queries/users.ts";
import { audit, type RequestMeta } from "./audit.ts";
import { addSeconds } from "./clock.ts";
import { issueEmailToken, peekEmailToken, retireEmailTokens, useEmailToken } from "./email-tokens.ts";
import { type Mailer, sendInBackground } from "./mailer/index.ts";
import { accountEmail } from "./mailer/messages.ts";
import { checkPasswordAgain, emailOwnerOnLock, type PasswordStep, passwordStep } from "./password-step.ts";
import { hashPassword, PASSWORD_MAX_LENGTH, passwordProblems, verifyAgainstDummy } from "./passwords.ts";
import { endSessions, listSessions, type SessionRow, signIn } from "./sessions.ts";
import { clearAccountThrottle } from "./throttle/failures.ts";
import { normalizeEmail } from "./throttle/keys.ts";
import { completeMfaChallenge, createMfaChallenge } from "./totp.ts";

export type { UserRow } from "../queries/users.ts";

/** Where a continuation after sign-in should go (validated by `safeReturnTo`). */
export interface Continuation {
  returnTo?: string | undefined;
  clientId?: string | undefined;
}

// ---------------------------------------------------------------------------------------------------------------------
// Input schemas shared by the pages and the JSON API, so both accept exactly the same input.

/**
 * Trimmed, Unicode NFC, lower-cased. The unique index is on lower(email) as well. Defined in throttle/keys.ts, which
 * keys accounts by this same form.
 */
export { normalizeEmail };

const email = z
  .string({ error: "Enter your email address." })
  .max(254, { error: "This email address is too long." })
  .transform(normalizeEmail)
  .pipe(z.email({ error: "Enter an email address like name@example.com." }));

/** Exactly as typed: never trimmed or truncated. The policy check happens in the library. */
const password = z
  .string({ error: "Enter your password." })
  .min(1, { error: "Enter your password." })
  .max(PASSWORD_MAX_LENGTH * 4, { error: `Use at most ${PASSWORD_MAX_LENGTH} characters.` });

const displayName = z
  .string()
  .trim()
  .max(100, { error: "Use at most 100 characters." })
  .refine((v) => !/[\p{Cc}\p{Cf}]/u.test(v), { error: "Remove the control characters from the name." })
  .transform((v) => v.normalize("NFC") || null)
  .nullable()
  .optional();

const token = z.string({ error: "The link is incomplete." }).min(1, { error: "The link is incomplete." }).max(200);

export const accountSchemas = {
  email,
  password,
  register: z.object({ email, password, displayName }),
  login: z.object({ email, password }),
  forgotPassword: z.object({ email }),
  resetPassword: z.object({ token, password }),
  verifyEmail: z.object({ token }),
  changePassword: z.object({ currentPassword: password, newPassword: password }),
  changeEmail: z.object({ currentPassword: password, newEmail: email }),
  profile: z.object({ displayName }),
  deleteAccount: z.object({ currentPassword: password }),
  sessionId: z.object({ sessionId: z.uuid({ error: "Unknown session." }) }),
};

// ---------------------------------------------------------------------------------------------------------------------
// Sign-in: a clear sequence of small named steps. Rate limiting, account throttling and a second factor slot in
// around `verifyCredentials` and before `startSession`.

/**
 * Checks an email and password (`passwordStep`: throttled and counted like the sign-in form, constant work for unknown
 * emails, a weaker stored hash upgraded) and returns the user, or throws the step's error (INVALID_CREDENTIALS, or
 * 429 while throttled). It does not look at a second factor: for callers that only need to know the password.
 */
export async function verifyCredentials(
  ctx: AppContext,
  rawEmail: string,
  plain: string,
  meta: RequestMeta = { ip: undefined, userAgent: undefined },
): Promise<UserRow> {
  const step = await passwordStep(ctx, { email: rawEmail, password: plain, meta });
  if (!step.ok) throw step.error;
  return step.user;
}

/** A disabled account cannot sign in; an unverified one only when the setting allows it (the default). */
export function signInRefusal(ctx: AppContext, user: UserRow): AppError | null {
  if (user.disabledAt) return new AppError("ACCOUNT_DISABLED");
  if (!user.emailVerifiedAt && !ctx.config.sessions.allowUnverifiedLogin) return new AppError("EMAIL_NOT_VERIFIED");
  return null;
}

/** Throws `signInRefusal`'s answer. */
export function checkCanSignIn(ctx: AppContext, user: UserRow): void {
  const refusal = signInRefusal(ctx, user);
  if (refusal) throw refusal;
}

export interface SignedIn {
  user: UserRow;
  session: SessionRow;
  /** The new session cookie value; set it with `setSessionCookie()` and never store it. */
  token: string;
}

/**
 * Creates the sign-in session (or extends the browser's current one and rotates its value). A live session of another
 * user on the same browser is ended first: its cookie is about to be replaced, so nothing could use it any more.
 */
export async function startSession(
  ctx: AppContext,
  input: { user: UserRow; amr: string[]; meta: RequestMeta; existing?: SessionRow | null; clientId?: string },
): Promise<SignedIn> {
  return ctx.db.transaction(async (tx) => {
    const existing = input.existing;
    if (existing && existing.userId !== input.user.id) {
      await endSessions(ctx, tx, { ids: [existing.id] }, "replaced");
      await audit(tx, input.meta, {
        event: "session.ended",
        outcome: "success",
        userId: existing.userId,
        sessionId: existing.id,
        details: { reason: "replaced" },
      });
    }
    const { session, token } = await signIn(ctx, tx, {
      userId: input.user.id,
      amr: input.amr,
      meta: input.meta,
      existing: existing?.userId === input.user.id ? existing : null,
    });
    await audit(tx, input.meta, {
      event: "user.signed_in",
      outcome: "success",
      userId: input.user.id,
      sessionId: session.id,
      clientId: input.clientId ?? null,
      details: { amr: input.amr, extended: existing?.id === session.id },
    });
    return { user: input.user, session, token };
  });
}

/** Audits a failed sign-in. The email is not stored (audit rows outlive accounts); the reason code is. */
export async function auditSignInFailure(
  ctx: AppContext,
  meta: RequestMeta,
  error: AppError,
  userId: string | null,
  clientId?: string,
): Promise<void> {
  await audit(ctx.db, meta, {
    event: "user.sign_in_failed",
    outcome: "failure",
    userId,
    clientId: clientId ?? null,
    details: { reason: error.code },
  });
}

/**
 * The password half of every sign-in (the form, the JSON API, direct sign-in): `passwordStep` (gate → verify → count
 * → lock), then `signInRefusal`, then, when asked, MFA_REQUIRED for an account with a second factor. A failure is
 * audited (user.sign_in_failed with its reason code, under the account when one was found) and thrown.
 */
export async function passwordSignIn(
  ctx: AppContext,
  input: {
    email: string;
    password: string;
    meta: RequestMeta;
    clientId?: string | undefined;
    log?: Logger | undefined;
    refuseSecondFactor?: boolean;
  },
): Promise<{ user: UserRow; hasSecondFactor: boolean }> {
  let account: UserRow | null = null;
  try {
    const step = await passwordStep(ctx, {
      email: input.email,
      password: input.password,
      meta: input.meta,
      onLocked: emailOwnerOnLock(ctx, input.log ?? quietLogger),
    });
    if (!step.ok) {
      account = step.account;
      throw step.error;
    }
    account = step.user;
    const refusal =
      signInRefusal(ctx, step.user) ??
      (input.refuseSecondFactor && step.hasSecondFactor ? new AppError("MFA_REQUIRED") : null);
    if (refusal) throw refusal;
    return step;
  } catch (error) {
    if (error instanceof AppError)
      await auditSignInFailure(ctx, input.meta, error, account?.id ?? null, input.clientId);
    throw error;
  }
}

/** After a right password for an account with a second factor: no session yet, a challenge for the code step. */
export interface SecondFactorPending {
  /** Put `token` in the challenge cookie (routes/pages/mfa-cookie.ts) and send the browser to /login/otp. */
  secondFactor: { token: string; expiresAt: Date };
}

/**
 * The hosted form's and the JSON API's password sign-in, one way through:
 * passwordStep (gate → verify → count → lock) → checkCanSignIn → second factor enrolled? a challenge for the code
 * step : clear the account's failures → startSession. A failure is audited with its reason code and thrown.
 */
export async function signInWithPassword(
  ctx: AppContext,
  input: {
    email: string;
    password: string;
    meta: RequestMeta;
    existing?: SessionRow | null;
    clientId?: string;
    log?: Logger;
  },
): Promise<SignedIn | SecondFactorPending> {
  const { user, hasSecondFactor } = await passwordSignIn(ctx, input);
  if (hasSecondFactor) {
    // No session before the second step: only a short-lived challenge the code step can finish.
    const secondFactor = await createMfaChallenge(ctx, ctx.db, user.id);
    await audit(ctx.db, input.meta, {
      event: "user.second_factor_required",
      outcome: "success",
      userId: user.id,
      clientId: input.clientId ?? null,
    });
    return { secondFactor };
  }
  await clearAccountThrottle(ctx, user.email);
  return startSession(ctx, {
    user,
    amr: ["pwd"],
    meta: input.meta,
    existing: input.existing,
    clientId: input.clientId,
  });
}

/**
 * The second sign-in step: completeMfaChallenge (challenge live, IP and account throttling, the code or a recovery
 * code, each usable once) → checkCanSignIn → startSession with amr pwd+otp.
 */
export async function signInWithSecondFactor(
  ctx: AppContext,
  log: Logger,
  input: {
    challengeToken: string | undefined;
    code: string;
    meta: RequestMeta;
    existing?: SessionRow | null;
    clientId?: string | undefined;
  },
): Promise<SignedIn> {
  const { userId } = await completeMfaChallenge(ctx, input.meta, {
    token: input.challengeToken,
    code: input.code,
    onLocked: async (email, until) => emailOwnerOnLock(ctx, log)(email, until),
  });
  const user = await findUserById(ctx.db, userId);
  if (!user) throw new AppError("MFA_CHALLENGE_EXPIRED");
  checkCanSignIn(ctx, user);
  return startSession(ctx, {
    user,
    amr: ["pwd", "otp"],
    meta: input.meta,
    existing: input.existing,
    ...(input.clientId ? { clientId: input.clientId } : {}),
  });
}

/** Ends the browser's session (every app in it). */
export async function signOut(ctx: AppContext, session: SessionRow, meta: RequestMeta): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const ended = await endSessions(ctx, tx, { ids: [session.id] }, "signed_out");
    if (ended.length === 0) return;
    await audit(tx, meta, {
      event: "user.signed_out",
      outcome: "success",
      userId: session.userId,
      sessionId: session.id,
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Registration

export type RegisterResult = { outcome: "signed_in"; signedIn: SignedIn } | { outcome: "check_email" };

/**
 * Registers an account. For an email that already has one: the right password simply signs the user in; anything
 * else answers exactly like a fresh registration ("check your email") and the owner of the address is told that
 * someone tried to register with it. Both paths spend one argon2 computation and send one email (in the background),
 * so neither the answer nor its timing tells whether the email is registered.
 */
export async function register(ctx: AppContext, log: Logger, input: RegisterInput): Promise<RegisterResult> {
  const problems = passwordProblems(ctx.config.passwords, input.password, "password", [
    input.email,
    input.email.split("@")[0],
    input.displayName,
  ]);
  if (problems.length) throw new AppError("WEAK_PASSWORD", problems[0]?.message, problems);
  const floor = responseFloor(ctx);
  try {
    return await registerChecked(ctx, log, input);
  } finally {
    await floor();
  }
}

export interface RegisterInput {
  email: string;
  password: string;
  displayName?: string | null | undefined;
  meta: RequestMeta;
  existing?: SessionRow | null;
  continuation?: Continuation;
}

/**
 * The work after the policy check. A new account costs more writes than a taken email, so `register` pads both to
 * `responseFloorMs` (wall time): the response time does not tell them apart.
 */
async function registerChecked(ctx: AppContext, log: Logger, input: RegisterInput): Promise<RegisterResult> {
  const found = await findUserByEmail(ctx.db, input.email);
  if (found) return registerExisting(ctx, log, found, input);

  const passwordHash = await hashPassword(ctx.config.passwords, input.password);
  const now = ctx.clock.now();
  const created = await ctx.db.transaction(async (tx) => {
    const user = await insertUser(tx, {
      email: input.email,
      passwordHash,
      displayName: input.displayName ?? null,
      now,
    });
    if (!user) return null;
    const token = await issueEmailToken(tx, {
      userId: user.id,
      purpose: "verify_email",
      ttlSeconds: ctx.config.tokens.emailVerificationTtlSeconds,
      now,
    });
    await audit(tx, input.meta, {
      event: "user.registered",
      outcome: "success",
      userId: user.id,
      clientId: input.continuation?.clientId ?? null,
    });
    return { user, token };
  });
  if (!created) {
    // Lost a race with a concurrent registration of the same address: answer exactly as for an existing email.
    const winner = await findUserByEmail(ctx.db, input.email);
    if (winner) notifyRegistrationAttempt(ctx, log, winner);
    return { outcome: "check_email" };
  }
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "verify_email",
      to: created.user.email,
      token: created.token,
      continuation: input.continuation,
    }),
    log,
  );
  return { outcome: "check_email" };
}

async function registerExisting(
  ctx: AppContext,
  log: Logger,
  user: UserRow,
  input: { password: string; meta: RequestMeta; existing?: SessionRow | null; continuation?: Continuation },
): Promise<RegisterResult> {
  // The right password signs in here, so this is a password check like sign-in: throttled and counted, and it never
  // skips a second factor or a lock. Those cases answer like any taken email ("check your email"), after the same
  // argon2 work.
  let step: PasswordStep | null = null;
  try {
    step = await passwordStep(ctx, {
      email: user.email,
      password: input.password,
      meta: input.meta,
      onLocked: emailOwnerOnLock(ctx, log),
    });
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    await verifyAgainstDummy(ctx.config.passwords, input.password);
  }
  if (step?.ok && !step.hasSecondFactor && !user.disabledAt) {
    checkCanSignIn(ctx, user);
    await clearAccountThrottle(ctx, user.email);
    const signedIn = await startSession(ctx, {
      user,
      amr: ["pwd"],
      meta: input.meta,
      existing: input.existing,
      clientId: input.continuation?.clientId,
    });
    return { outcome: "signed_in", signedIn };
  }
  await audit(ctx.db, input.meta, {
    event: "user.registered",
    outcome: "failure",
    userId: user.id,
    details: { reason: "email_taken" },
  });
  notifyRegistrationAttempt(ctx, log, user);
  return { outcome: "check_email" };
}

function notifyRegistrationAttempt(ctx: AppContext, log: Logger, user: UserRow): void {
  sendInBackground(ctx.mailer, accountEmail(ctx.config, { kind: "registration_attempt", to: user.email }), log);
}

// ---------------------------------------------------------------------------------------------------------------------
// Email verification and email change (one link page serves both purposes)

export type EmailLinkPurpose = "verify_email" | "change_email";

/** What a link is for, without using it (the confirmation page shows this before the POST does the work). */
export async function inspectEmailLink(
  ctx: AppContext,
  token: string,
): Promise<{ purpose: EmailLinkPurpose; newEmail: string | null }> {
  const row = await peekEmailToken(ctx.db, token, ["verify_email", "change_email"], ctx.clock.now());
  return { purpose: row.purpose as EmailLinkPurpose, newEmail: row.newEmail };
}

export type EmailLinkResult = { purpose: "verify_email"; user: UserRow } | { purpose: "change_email"; user: UserRow };

/**
 * Uses a verification or email-change link. Neither signs anyone in: an email link is not a password. Signing in from
 * a verification link would turn a day-long, forwardable link into a magic link that skips the sign-in throttling and
 * lock, would let someone who registered a victim's address with a password of their own hand the victim a signed-in
 * session on that account (the victim then uses an account whose password the registrant knows; without the automatic
 * sign-in the victim has to reset the password, which ends the registrant's sessions), and would sign a browser into
 * whatever account a link sent to it belongs to. Changing the email checks the new address is still free and tells the
 * old address.
 */
export async function confirmEmailLink(
  ctx: AppContext,
  log: Logger,
  input: { token: string; meta: RequestMeta },
): Promise<EmailLinkResult> {
  const { purpose } = await inspectEmailLink(ctx, input.token);
  const now = ctx.clock.now();
  if (purpose === "verify_email") {
    const user = await ctx.db.transaction(async (tx) => {
      const row = await useEmailToken(tx, input.token, "verify_email", now);
      const user = await findUserById(tx, row.userId);
      if (!user || user.disabledAt) throw new AppError("INVALID_TOKEN");
      const updated = user.emailVerifiedAt
        ? user
        : await updateUser(tx, user.id, { emailVerifiedAt: now, updatedAt: now });
      await audit(tx, input.meta, { event: "user.email_verified", outcome: "success", userId: user.id });
      return updated ?? user;
    });
    return { purpose, user };
  }

  const { user, oldEmail } = await ctx.db.transaction(async (tx) => {
    const row = await useEmailToken(tx, input.token, "change_email", now);
    const user = await findUserById(tx, row.userId);
    if (!user || !row.newEmail) throw new AppError("INVALID_TOKEN");
    const taken = () =>
      new AppError("CONFLICT", "This email address is already used by another account.", [
        { field: "newEmail", message: "This email address is already used by another account." },
      ]);
    if (await isEmailTaken(tx, row.newEmail, user.id)) throw taken();
    // Null when a concurrent change or registration took the address after the check (the unique index decides).
    const updated = await changeUserEmail(tx, user.id, row.newEmail, now);
    if (!updated) throw taken();
    await retireEmailTokens(tx, user.id, now);
    await audit(tx, input.meta, { event: "user.email_changed", outcome: "success", userId: user.id });
    return { user: updated, oldEmail: user.email };
  });
  sendInBackground(ctx.mailer, accountEmail(ctx.config, { kind: "email_changed", to: oldEmail }), log);
  return { purpose, user };
}

/** Sends a fresh verification link to a signed-in user whose address is not verified yet (older links stop working). */
export async function resendVerification(
  ctx: AppContext,
  log: Logger,
  user: UserRow,
  continuation?: Continuation,
): Promise<void> {
  if (user.emailVerifiedAt) return;
  const token = await issueEmailToken(ctx.db, {
    userId: user.id,
    purpose: "verify_email",
    ttlSeconds: ctx.config.tokens.emailVerificationTtlSeconds,
    now: ctx.clock.now(),
  });
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, { kind: "verify_email", to: user.email, token, continuation }),
    log,
  );
}

/** Starts an email change: needs the current password; the link goes to the new address. */
export async function requestEmailChange(
  ctx: AppContext,
  log: Logger,
  input: { user: UserRow; currentPassword: string; newEmail: string; meta: RequestMeta },
): Promise<void> {
  await checkCurrentPassword(ctx, { user: input.user, plain: input.currentPassword, meta: input.meta, log });
  if (input.newEmail === normalizeEmail(input.user.email)) {
    throw new AppError("VALIDATION_FAILED", "This is already your email address.", [
      { field: "newEmail", message: "This is already your email address." },
    ]);
  }
  // Whether the new address is taken is checked only when the link is used, by the address's owner: answering here
  // would let a signed-in user probe which addresses have accounts.
  const token = await issueEmailToken(ctx.db, {
    userId: input.user.id,
    purpose: "change_email",
    ttlSeconds: ctx.config.tokens.emailVerificationTtlSeconds,
    now: ctx.clock.now(),
    newEmail: input.newEmail,
  });
  sendInBackground(ctx.mailer, accountEmail(ctx.config, { kind: "change_email", to: input.newEmail, token }), log);
}

// ---------------------------------------------------------------------------------------------------------------------
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
    accountEmail(ctx.config, { kind: "reset_password", to: user.email, token, continuation: input.continuation }),
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
  sendInBackground(ctx.mailer, accountEmail(ctx.config, { kind: "password_changed", to: user.email }), log);
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
  sendInBackground(ctx.mailer, accountEmail(ctx.config, { kind: "password_changed", to: input.user.email }), log);
}

/**
 * Throws INVALID_CREDENTIALS (on the `currentPassword` field) unless the password is the user's current one. Counted
 * and throttled like a sign-in (`checkPasswordAgain`); a failure that locks the account emails the owner.
 */
async function checkCurrentPassword(
  ctx: AppContext,
  input: { user: UserRow; plain: string; meta: RequestMeta; log?: Logger | undefined },
): Promise<void> {
  await checkPasswordAgain(ctx, {
    user: input.user,
    password: input.plain,
    meta: input.meta,
    field: "currentPassword",
    onLocked: emailOwnerOnLock(ctx, input.log ?? quietLogger),
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Profile, sessions, deletion

export async function updateProfile(
  ctx: AppContext,
  input: { user: UserRow; displayName: string | null; meta: RequestMeta },
): Promise<UserRow> {
  const updated = await updateUser(ctx.db, input.user.id, {
    displayName: input.displayName,
    updatedAt: ctx.clock.now(),
  });
  if (!updated) throw new AppError("UNAUTHENTICATED");
  return updated;
}

export async function userSessions(ctx: AppContext, userId: string): Promise<SessionRow[]> {
  return listSessions(ctx, userId);
}

/** Ends one of the user's own sessions. Another user's session id answers SESSION_NOT_FOUND, like an unknown one. */
export async function endUserSession(
  ctx: AppContext,
  input: { userId: string; sessionId: string; meta: RequestMeta; currentSessionId?: string },
): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const ended = await endSessions(ctx, tx, { ids: [input.sessionId], userId: input.userId }, "ended_by_user");
    if (ended.length === 0) throw new AppError("SESSION_NOT_FOUND");
    await audit(tx, input.meta, {
      event: "session.ended",
      outcome: "success",
      userId: input.userId,
      sessionId: input.sessionId,
      details: { reason: "ended_by_user", current: input.sessionId === input.currentSessionId },
    });
  });
}

/** "Sign out everywhere else": ends every session of the user except the current one. Returns how many ended. */
export async function endOtherSessions(
  ctx: AppContext,
  input: { userId: string; currentSessionId: string; meta: RequestMeta },
): Promise<number> {
  return ctx.db.transaction(async (tx) => {
    const ended = await endSessions(
      ctx,
      tx,
      { userId: input.userId, exceptId: input.currentSessionId },
      "ended_by_user",
    );
    for (const id of ended) {
      await audit(tx, input.meta, {
        event: "session.ended",
        outcome: "success",
        userId: input.userId,
        sessionId: id,
        details: { reason: "ended_by_user" },
      });
    }
    return ended.length;
  });
}

async function endAllSessions(
  ctx: AppContext,
  tx: Executor,
  meta: RequestMeta,
  userId: string,
  reason: string,
): Promise<void> {
  const ended = await endSessions(ctx, tx, { userId }, reason);
  for (const id of ended) {
    await audit(tx, meta, { event: "session.ended", outcome: "success", userId, sessionId: id, details: { reason } });
  }
}

/**
 * Deletes the account (needs the current password): every session ends (every app signs out), personal data is
 * removed (email replaced by a placeholder, name and password hash dropped, open links deleted, session IPs and user
 * agents cleared). Audit rows keep the events under the user id, without the email.
 */
export async function deleteAccount(
  ctx: AppContext,
  input: { user: UserRow; currentPassword: string; meta: RequestMeta },
): Promise<void> {
  await checkCurrentPassword(ctx, { user: input.user, plain: input.currentPassword, meta: input.meta });
  const now = ctx.clock.now();
  await ctx.db.transaction(async (tx) => {
    await endAllSessions(ctx, tx, input.meta, input.user.id, "account_deleted");
    const done = await anonymizeUser(tx, input.user.id, now);
    if (!done) throw new AppError("UNAUTHENTICATED");
    await audit(tx, input.meta, { event: "user.deleted", outcome: "success", userId: input.user.id });
  });
}

/**
 * Starts a wall-clock floor: the returned function waits until `responseFloorMs` have passed since the start. Register
 * and forgot-password do different database work for known and unknown emails; waiting out the same floor on every
 * path keeps that difference out of the response time (SECURITY.md: no enumeration by timing).
 */
function responseFloor(ctx: AppContext): () => Promise<void> {
  const started = performance.now();
  return async () => {
    const remaining = ctx.config.passwords.responseFloorMs - (performance.now() - started);
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
  };
}

/**
 * The contract with the OpenID endpoints: after sign-in, continue to `return_to` only when it is a same-origin
 * relative path (one leading `/`, no `//`, no `\`, no scheme, no control characters); anything else lands on
 * /account. Returns the path to redirect to.
 */
export function safeReturnTo(raw: unknown, fallback = "/account"): string {
  if (typeof raw !== "string" || raw.length === 0 || raw.length > 4096) return fallback;
  if (!raw.startsWith("/") || raw.startsWith("//")) return fallback;
  if (raw.includes("\\") || /\p{Cc}/u.test(raw)) return fallback;
  // A scheme can only appear before the first "/", "?" or "#"; the path starts with "/", so check decoded forms too.
  try {
    const decoded = decodeURIComponent(raw);
    if (decoded.startsWith("//") || decoded.includes("\\")) return fallback;
  } catch {
    return fallback;
  }
  try {
    const base = "http://tessera.invalid";
    const resolved = new URL(raw, base);
    if (resolved.origin !== base) return fallback;
  } catch {
    return fallback;
  }
  return raw;
}

/** Mailer type re-exported for callers that build an AppContext by hand (CLI, tests). */
export type { Mailer };
