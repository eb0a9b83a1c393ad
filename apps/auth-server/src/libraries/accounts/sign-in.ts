import { type AppContext, type Logger, quietLogger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { passkeyExists } from "../../queries/passkeys.ts";
import { confirmedTotpExists } from "../../queries/totp.ts";
import { findUserById, type UserRow } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { federatedFirstFactor } from "../federation/accounts.ts";
import { countSignIn, countSignInFailure } from "../metrics.ts";
import { completeMfaChallenge, createMfaChallenge } from "../mfa/challenge.ts";
import { emailOwnerOnLock, passwordStep } from "../password-step.ts";
import { endSessions, type SessionRow, signIn, startFreshSession } from "../sessions.ts";
import { clearAccountThrottle } from "../throttle/failures.ts";

// Sign-in, one way through: passwordSignIn (password-step.ts: gate → verify → count → lock, then the account's own
// refusals) → a challenge for the code step when a second factor is set up, else startSession.

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
  const existing = input.existing;
  if (!existing) {
    // A fresh session: the session and its audit row are one statement (atomic by itself, one round trip).
    const { session, token } = await startFreshSession(ctx, ctx.db, {
      userId: input.user.id,
      amr: input.amr,
      meta: input.meta,
      audit: {
        event: "user.signed_in",
        outcome: "success",
        userId: input.user.id,
        clientId: input.clientId ?? null,
        details: { amr: input.amr, extended: false },
      },
    });
    countSignIn(input.amr); // after the commit: a rolled-back sign-in is not one
    return { user: input.user, session, token };
  }
  const signedIn = await ctx.db.transaction(async (tx) => {
    if (existing.userId !== input.user.id) {
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
      existing: existing.userId === input.user.id ? existing : null,
    });
    await audit(tx, input.meta, {
      event: "user.signed_in",
      outcome: "success",
      userId: input.user.id,
      sessionId: session.id,
      clientId: input.clientId ?? null,
      details: { amr: input.amr, extended: existing.id === session.id },
    });
    return { user: input.user, session, token };
  });
  countSignIn(input.amr); // after the commit: a rolled-back sign-in is not one
  return signedIn;
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
  countSignInFailure("password", error.code);
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
): Promise<{ user: UserRow; hasSecondFactor: boolean; throttleCounted: boolean }> {
  let account: UserRow | null = null;
  try {
    const step = await passwordStep(ctx, {
      email: input.email,
      password: input.password,
      meta: input.meta,
      onLocked: emailOwnerOnLock(ctx, input.log ?? quietLogger, input.meta),
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
  /** Which second steps the account has: send the browser to /login/passkey when it has no TOTP. */
  methods: { totp: boolean; passkey: boolean };
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
  const { user, hasSecondFactor, throttleCounted } = await passwordSignIn(ctx, input);
  if (hasSecondFactor) {
    // No session before the second step: only a short-lived challenge the code step can finish.
    const secondFactor = await createMfaChallenge(ctx, ctx.db, user.id);
    await audit(ctx.db, input.meta, {
      event: "user.second_factor_required",
      outcome: "success",
      userId: user.id,
      clientId: input.clientId ?? null,
    });
    const methods = { totp: await confirmedTotpExists(ctx.db, user.id), passkey: await passkeyExists(ctx.db, user.id) };
    return { secondFactor, methods };
  }
  // Failures recorded before this right password are cleared (none recorded: nothing to clear).
  if (throttleCounted) await clearAccountThrottle(ctx, user.email);
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
  // A federated first factor (libraries/federation) left its amr beside the challenge; a password one did not.
  const firstFactor = (await federatedFirstFactor(ctx, input.challengeToken)) ?? ["pwd"];
  const { userId } = await completeMfaChallenge(ctx, input.meta, {
    token: input.challengeToken,
    code: input.code,
    onLocked: async (email, until) => emailOwnerOnLock(ctx, log, input.meta)(email, until),
  });
  const user = await findUserById(ctx.db, userId);
  if (!user) throw new AppError("MFA_CHALLENGE_EXPIRED");
  checkCanSignIn(ctx, user);
  return startSession(ctx, {
    user,
    amr: [...firstFactor, "otp"],
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
