import type { CoreContext } from "../../context.ts";
import {
  deleteAccountThrottle,
  incrementAccountFailures,
  incrementIpFailures,
  lockAccount,
  suspendIp,
} from "../../queries/throttle.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { addSeconds } from "../clock.ts";
import { accountKey, secondFactorKey, throttleIp } from "./keys.ts";

/** Counting failed sign-ins (and code guesses) and clearing the count; the rules are described in gate.ts. */

const backoff = (base: number, max: number, exponent: number) => Math.min(max, base * 2 ** Math.min(exponent, 30));

export interface FailureResult {
  accountFailures: number;
  /** Set when this failure locked the account (exactly one of parallel failures sees it). */
  accountLockedUntil: Date | null;
  /** Set when this failure suspended the IP. */
  ipSuspendedUntil: Date | null;
}

/**
 * Counts a failed attempt (wrong password, wrong code) against the IP and the account key, atomically, then
 * suspends or locks when a threshold is crossed. `onLocked` runs once per lock (to email the owner, when the account
 * exists); its failure is logged by the caller's logger, not fatal.
 */
export async function recordSignInFailure(
  deps: CoreContext,
  meta: RequestMeta,
  input: ({ email: string } | { key: string }) & {
    userId?: string | null | undefined;
    reason: "password" | "otp" | "recovery_code" | "user_code";
    onLocked?: ((until: Date) => Promise<void>) | undefined;
  },
): Promise<FailureResult> {
  const t = deps.config.throttle;
  const now = deps.clock.now();
  const ip = throttleIp(meta.ip);
  const key = "key" in input ? input.key : accountKey(deps.config, input.email);

  const ipRow = await incrementIpFailures(
    deps.db,
    ip,
    now,
    addSeconds(now, -t.ipWindowSeconds),
    addSeconds(now, -t.ipSuspendMaxSeconds),
  );
  let ipSuspendedUntil: Date | null = null;
  if (ipRow.failures >= t.ipMaxFailures) {
    const until = addSeconds(now, backoff(t.ipSuspendBaseSeconds, t.ipSuspendMaxSeconds, ipRow.suspensions));
    const suspended = await suspendIp(deps.db, {
      ip,
      now,
      until,
      maxFailures: t.ipMaxFailures,
      seenSuspensions: ipRow.suspensions,
    });
    if (suspended) {
      ipSuspendedUntil = until;
      await audit(deps.db, meta, {
        event: "throttle.ip_suspended",
        outcome: "failure",
        details: { ip, until: until.toISOString(), suspensions: suspended.suspensions },
      });
    }
  }

  const accountRow = await incrementAccountFailures(deps.db, key, now, addSeconds(now, -t.accountWindowSeconds));
  let accountLockedUntil: Date | null = null;
  if (accountRow.failures >= t.accountLockThreshold) {
    const until = addSeconds(now, backoff(t.accountLockSeconds, t.accountLockMaxSeconds, accountRow.locks));
    const locked = await lockAccount(deps.db, {
      key,
      now,
      until,
      threshold: t.accountLockThreshold,
      seenLocks: accountRow.locks,
    });
    if (locked) {
      accountLockedUntil = until;
      await audit(deps.db, meta, {
        event: "throttle.account_locked",
        outcome: "failure",
        userId: input.userId,
        details: { key: key.slice(0, 12), until: until.toISOString(), locks: locked.locks, failures: locked.failures },
      });
      if (input.onLocked) await input.onLocked(until);
    }
  }
  return { accountFailures: accountRow.failures, accountLockedUntil, ipSuspendedUntil };
}

/**
 * A successful sign-in (or a completed password reset) clears the account's failures and lock; with the user id (a
 * right code at the second step), the second-factor counter too.
 */
export async function clearAccountThrottle(deps: CoreContext, email: string, userId?: string): Promise<void> {
  await deleteAccountThrottle(deps.db, accountKey(deps.config, email));
  if (userId) await deleteAccountThrottle(deps.db, secondFactorKey(deps.config, userId));
}
