import type { Config } from "../../config/index.ts";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { findAccountThrottle, findIpSuspension } from "../../queries/throttle.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { addSeconds } from "../clock.ts";
import { accountKey, throttleIp } from "./keys.ts";

/**
 * Failed sign-in throttling, kept in PostgreSQL so every instance sees the same state and it survives restarts.
 *
 * - Per IP: THROTTLE_IP_MAX_FAILURES failures within THROTTLE_IP_WINDOW_SECONDS suspend the IP for
 *   base × 2^n seconds (n = earlier suspensions, capped at THROTTLE_IP_SUSPEND_MAX_SECONDS). Suspensions expire on
 *   their own; an admin can lift one.
 * - Per account: keyed by an HMAC of the normalized email, so unknown emails are counted exactly like known ones and
 *   the table reveals neither which accounts exist nor their addresses. After THROTTLE_ACCOUNT_FREE_FAILURES
 *   failures each further attempt must wait base × 2^k seconds (capped) after the last failure; at
 *   THROTTLE_ACCOUNT_LOCK_THRESHOLD the account is locked for a while (doubling per lock, capped) and its owner is
 *   emailed. A successful sign-in or a password reset clears the counter.
 * - Per user at the second sign-in step: wrong codes count under their own key (`secondFactorKey`) with the same
 *   delays and lock, so a lock from password guesses never blocks the code step and codes cannot be guessed without end.
 *   Only a right code, time or an operator clears it (a reset link proves the mailbox, not the second factor).
 *
 * Waits are enforced as "not before" deadlines answered with 429 + Retry-After rather than by holding requests open,
 * so an attacker cannot tie up server connections, and tests move the clock instead of sleeping.
 *
 * A lock must not let an attacker keep a real user out: it ends by itself, a reset link clears it, and a user with a
 * confirmed second factor can still sign in during a lock (correct password and then a valid code; see
 * `accountLockBlocks`). Failures keep counting while locked.
 */

const secondsUntil = (until: Date, now: Date) => Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
const retryAfter = (seconds: number) => ({ "retry-after": String(seconds) });

/** Seconds a key must wait after its last failure, given its failure count. */
export function accountDelaySeconds(config: Config, failures: number): number {
  const t = config.throttle;
  const over = failures - t.accountFreeFailures;
  if (over <= 0 || t.accountDelayBaseSeconds === 0) return 0;
  return Math.min(t.accountDelayMaxSeconds, t.accountDelayBaseSeconds * 2 ** Math.min(over - 1, 30));
}

export interface SignInGate {
  /** The account key is locked; only `accountLockBlocks()` decides whether this attempt may still go through. */
  accountLocked: boolean;
  retryAfterSeconds: number;
  /**
   * The account key had a failure record when the gate read it: a successful sign-in clears it. Without one (the
   * usual case) there is nothing to clear, and the sign-in saves the statement.
   */
  counted: boolean;
}

/**
 * Checked before the password: throws IP_SUSPENDED for a suspended IP and LOGIN_THROTTLED while the account key must
 * still wait after its last failure. Says whether the account is locked; the caller then checks the password anyway
 * (same work for every email) and calls `accountLockBlocks()`.
 */
export async function checkSignIn(
  deps: CoreContext,
  meta: RequestMeta,
  input: ({ email: string } | { key: string }) & { userId?: string | null | undefined },
): Promise<SignInGate> {
  // Both reads at once (one round trip); a suspended IP is refused whatever the account's record says.
  const [, row] = await Promise.all([
    assertIpAllowed(deps, meta, input.userId),
    findAccountThrottle(deps.db, "key" in input ? input.key : accountKey(deps.config, input.email)),
  ]);
  const now = deps.clock.now();
  if (!row) return { accountLocked: false, retryAfterSeconds: 0, counted: false };
  const delay = accountDelaySeconds(deps.config, row.failures);
  const notBefore = row.lastFailureAt && delay > 0 ? addSeconds(row.lastFailureAt, delay) : null;
  if (notBefore && notBefore > now) {
    await audit(deps.db, meta, {
      event: "login.blocked",
      outcome: "failure",
      userId: input.userId,
      details: { reason: "account_delay" },
    });
    const seconds = secondsUntil(notBefore, now);
    throw new AppError("LOGIN_THROTTLED", undefined, undefined, retryAfter(seconds));
  }
  if (row.lockedUntil && row.lockedUntil > now) {
    return { accountLocked: true, retryAfterSeconds: secondsUntil(row.lockedUntil, now), counted: true };
  }
  return { accountLocked: false, retryAfterSeconds: 0, counted: true };
}

/**
 * Runs the password checks of one account key one at a time (on this instance). `checkSignIn` reads the counter
 * before the password is tried and the failure is written after it, so without this a burst of parallel guesses
 * would all pass the gate before the first failure landed: each would be counted, but each would also be tried, and
 * the delays and the lock would not hold inside the burst. In line, each guess sees the failures of the one before,
 * and the rest of a burst is refused (LOGIN_THROTTLED) without touching the password. Several instances each keep
 * their own line, so a burst spread over n instances gets at most n guesses past a delay.
 */
const checksInLine = new Map<string, Promise<void>>();
export function oneAtATime<T>(key: string, task: () => Promise<T>): Promise<T> {
  const before = checksInLine.get(key) ?? Promise.resolve();
  const run = before.then(task);
  const done = run.then(
    () => undefined,
    () => undefined,
  );
  checksInLine.set(key, done);
  void done.then(() => {
    if (checksInLine.get(key) === done) checksInLine.delete(key);
  });
  return run;
}

/** ACCOUNT_LOCKED (429) with Retry-After until the lock ends. */
export function accountLockedError(until: Date, now: Date): AppError {
  return new AppError("ACCOUNT_LOCKED", undefined, undefined, retryAfter(secondsUntil(until, now)));
}

/**
 * After the password check, for a locked account: the attempt is refused with ACCOUNT_LOCKED unless the password was
 * right AND the user has a confirmed second factor (the code step still stands guard). The answer for a wrong
 * password is the same for every email, known or not.
 */
export function accountLockBlocks(
  gate: SignInGate,
  outcome: { passwordOk: boolean; hasSecondFactor: boolean },
): AppError | null {
  if (!gate.accountLocked) return null;
  if (outcome.passwordOk && outcome.hasSecondFactor) return null;
  return new AppError("ACCOUNT_LOCKED", undefined, undefined, retryAfter(gate.retryAfterSeconds));
}

/** Throws IP_SUSPENDED (429 with Retry-After) while the request's IP is suspended. */
export async function assertIpAllowed(
  deps: CoreContext,
  meta: RequestMeta,
  userId?: string | null | undefined,
): Promise<void> {
  const now = deps.clock.now();
  const row = await findIpSuspension(deps.db, throttleIp(meta.ip));
  if (row?.suspendedUntil && row.suspendedUntil > now) {
    await audit(deps.db, meta, {
      event: "login.blocked",
      outcome: "failure",
      userId,
      details: { reason: "ip_suspended" },
    });
    throw new AppError("IP_SUSPENDED", undefined, undefined, retryAfter(secondsUntil(row.suspendedUntil, now)));
  }
}
