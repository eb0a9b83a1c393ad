import type { Executor } from "@tessera/db";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  consumeMfaChallenge,
  countMfaChallengeAttempt,
  findLiveMfaChallenge,
  insertMfaChallenge,
} from "../../queries/totp.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { addSeconds } from "../clock.ts";
import { randomToken, sha256 } from "../crypto.ts";
import { clearAccountThrottle, recordSignInFailure } from "../throttle/failures.ts";
import { accountLockBlocks, accountLockedError, checkSignIn, oneAtATime } from "../throttle/gate.ts";
import { secondFactorKey } from "../throttle/keys.ts";
import { useSecondFactor } from "./factor.ts";

// The second sign-in step: between the password and the session.

/**
 * After a correct password for a user with a confirmed factor: records the half-finished sign-in and returns the
 * random value for the browser's short-lived cookie. No session exists yet.
 */
export async function createMfaChallenge(
  deps: CoreContext,
  db: Executor,
  userId: string,
): Promise<{ token: string; expiresAt: Date }> {
  const now = deps.clock.now();
  const token = randomToken();
  const expiresAt = addSeconds(now, deps.config.mfa.challengeTtlSeconds);
  await insertMfaChallenge(db, { tokenHash: sha256(token), userId, createdAt: now, expiresAt });
  return { token, expiresAt };
}

/** Whether a challenge cookie value is live (for showing the code page); never consumes anything. */
export async function peekMfaChallenge(deps: CoreContext, token: string | undefined): Promise<boolean> {
  if (!token || token.length > 200) return false;
  return Boolean(await findLiveMfaChallenge(deps.db, sha256(token), deps.clock.now()));
}

/**
 * The code step: checks the challenge (MFA_CHALLENGE_EXPIRED when unknown, expired, used or out of guesses), the IP
 * suspension and the account's throttling delay, counts the guess, and checks the code (INVALID_OTP, counted as a
 * failed sign-in for the IP and the account). On success the challenge is spent in the same transaction as the code,
 * the account's failure counter is cleared, and the user id is returned for the caller to start the session with
 * `amr: ["pwd", "otp"]`. An account lock does not block this step: the password was right and the factor is
 * proving possession.
 */
export async function completeMfaChallenge(
  deps: CoreContext,
  meta: RequestMeta,
  input: { token: string | undefined; code: string; onLocked?: (email: string, until: Date) => Promise<void> },
): Promise<{ userId: string; method: "otp" | "recovery_code" }> {
  const expired = () => new AppError("MFA_CHALLENGE_EXPIRED");
  if (!input.token || input.token.length > 200) throw expired();
  const found = await findLiveMfaChallenge(deps.db, sha256(input.token), deps.clock.now());
  if (!found) throw expired();
  const { challenge, email } = found;
  // Wrong codes have their own counter (delays, then a lock): the password's lock does not apply here. Guesses of one
  // user run one at a time (throttle/gate.ts `oneAtATime`), so codes sent in parallel over many challenges each see the
  // failures before them.
  const key = secondFactorKey(deps.config, challenge.userId);
  return oneAtATime(key, () => checkCodeInLine(deps, meta, input, { challenge, email, key }));
}

async function checkCodeInLine(
  deps: CoreContext,
  meta: RequestMeta,
  input: { code: string; onLocked?: (email: string, until: Date) => Promise<void> },
  found: { challenge: { id: string; userId: string }; email: string; key: string },
): Promise<{ userId: string; method: "otp" | "recovery_code" }> {
  const expired = () => new AppError("MFA_CHALLENGE_EXPIRED");
  const { challenge, email, key } = found;
  const gate = await checkSignIn(deps, meta, { key, userId: challenge.userId });
  const locked = accountLockBlocks(gate, { passwordOk: false, hasSecondFactor: false });
  if (locked) throw locked;
  const counted = await countMfaChallengeAttempt(
    deps.db,
    challenge.id,
    deps.config.mfa.challengeMaxAttempts,
    deps.clock.now(),
  );
  if (!counted) throw expired();

  const method = await deps.db.transaction(async (tx) => {
    const used = await useSecondFactor(deps, tx, challenge.userId, input.code);
    if (!used) return null;
    if (!(await consumeMfaChallenge(tx, challenge.id, deps.clock.now()))) throw expired();
    await audit(tx, meta, {
      event: "mfa.verified",
      outcome: "success",
      userId: challenge.userId,
      details: { method: used },
    });
    return used;
  });
  if (!method) {
    await audit(deps.db, meta, { event: "mfa.verified", outcome: "failure", userId: challenge.userId });
    const counted = await recordSignInFailure(deps, meta, {
      key,
      userId: challenge.userId,
      reason: "otp",
      onLocked: input.onLocked ? (until) => input.onLocked?.(email, until) ?? Promise.resolve() : undefined,
    });
    if (counted.accountLockedUntil) throw accountLockedError(counted.accountLockedUntil, deps.clock.now());
    throw new AppError("INVALID_OTP", undefined, [{ field: "code", message: "That code is not valid." }]);
  }
  await clearAccountThrottle(deps, email, challenge.userId);
  return { userId: challenge.userId, method };
}
