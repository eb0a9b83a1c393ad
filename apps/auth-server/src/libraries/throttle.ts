import { createHmac } from "node:crypto";
import type { Config } from "../config/index.ts";
import type { CoreContext } from "../context.ts";
import { AppError } from "../errors/index.ts";
import {
  deleteAccountThrottle,
  deleteAccountThrottleRow,
  findAccountThrottle,
  findIpSuspension,
  type IpSuspensionRow,
  incrementAccountFailures,
  incrementIpFailures,
  liftIpSuspension as liftIpSuspensionRow,
  listActiveIpSuspensions,
  lockAccount,
  suspendIp,
} from "../queries/throttle.ts";
import { findUserByEmail } from "../queries/users.ts";
import { renderView } from "../views/index.ts";
import { audit, type RequestMeta } from "./audit.ts";
import { ipBlock } from "./client-ip.ts";
import { addSeconds } from "./clock.ts";
import type { MailMessage } from "./mailer/types.ts";
import { verifyPassword } from "./passwords.ts";

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
/**
 * The form every email takes, in the users table and before keying (trimmed, NFC, lower-cased). Re-exported by
 * accounts.ts, whose schemas apply it to every email input.
 */
export const normalizeEmail = (email: string): string => email.trim().normalize("NFC").toLowerCase();

/** HMAC-SHA256 of the normalized email under a key derived from the master key. */
export function accountKey(config: Config, email: string): string {
  const key = createHmac("sha256", config.masterKey).update("tessera/account-throttle/v1").digest();
  return createHmac("sha256", key).update(normalizeEmail(email)).digest("hex");
}

/**
 * The key counting wrong codes at the second sign-in step, per user. Separate from the password key: a lock from
 * password guesses must not stop the owner's code step, but wrong codes need their own delays and lock, or someone
 * holding the password could guess codes without end.
 */
export function secondFactorKey(config: Config, userId: string): string {
  return `otp:${accountKey(config, `user:${userId}`)}`;
}

/** The IP as counted: IPv6 addresses by their /64, the smallest block one customer usually gets. */
export const throttleIp = (ip: string | undefined): string => ipBlock(ip ?? "unknown");

const secondsUntil = (until: Date, now: Date) => Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
const retryAfter = (seconds: number) => ({ "retry-after": String(seconds) });

/** Seconds a key must wait after its last failure, given its failure count. */
export function accountDelaySeconds(config: Config, failures: number): number {
  const t = config.throttle;
  const over = failures - t.accountFreeFailures;
  if (over <= 0 || t.accountDelayBaseSeconds === 0) return 0;
  return Math.min(t.accountDelayMaxSeconds, t.accountDelayBaseSeconds * 2 ** Math.min(over - 1, 30));
}

const backoff = (base: number, max: number, exponent: number) => Math.min(max, base * 2 ** Math.min(exponent, 30));

export interface SignInGate {
  /** The account key is locked; only `accountLockBlocks()` decides whether this attempt may still go through. */
  accountLocked: boolean;
  retryAfterSeconds: number;
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
  await assertIpAllowed(deps, meta, input.userId);
  const now = deps.clock.now();
  const row = await findAccountThrottle(deps.db, "key" in input ? input.key : accountKey(deps.config, input.email));
  if (!row) return { accountLocked: false, retryAfterSeconds: 0 };
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
    return { accountLocked: true, retryAfterSeconds: secondsUntil(row.lockedUntil, now) };
  }
  return { accountLocked: false, retryAfterSeconds: 0 };
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
    reason: "password" | "otp" | "recovery_code";
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
 * The password typed again by a signed-in user (change password or email, delete the account, turn off two-step
 * verification). It is a password guess like a sign-in, by whoever holds the session: the same per-account and per-IP
 * counting, delays and lock apply, or a stolen session could guess the password without limit. A right password does
 * not clear the counter (only a sign-in or a reset does). Throws IP_SUSPENDED / LOGIN_THROTTLED / ACCOUNT_LOCKED (429),
 * or INVALID_CREDENTIALS on `field`.
 */
export async function checkPasswordAgain(
  deps: CoreContext,
  meta: RequestMeta,
  input: {
    user: { id: string; email: string; passwordHash: string | null };
    password: string;
    field: string;
    onLocked?: ((until: Date) => Promise<void>) | undefined;
  },
): Promise<void> {
  const { user } = input;
  await oneAtATime(accountKey(deps.config, user.email), () => checkPasswordAgainInLine(deps, meta, input));
}

async function checkPasswordAgainInLine(
  deps: CoreContext,
  meta: RequestMeta,
  input: Parameters<typeof checkPasswordAgain>[2],
): Promise<void> {
  const { user } = input;
  const gate = await checkSignIn(deps, meta, { email: user.email, userId: user.id });
  const ok = user.passwordHash
    ? (await verifyPassword(deps.config.passwords, user.passwordHash, input.password)).ok
    : false;
  if (ok) {
    const blocked = accountLockBlocks(gate, { passwordOk: true, hasSecondFactor: false });
    if (blocked) throw blocked;
    return;
  }
  await audit(deps.db, meta, {
    event: "user.password_check_failed",
    outcome: "failure",
    userId: user.id,
    details: { field: input.field },
  });
  const counted = await recordSignInFailure(deps, meta, {
    email: user.email,
    userId: user.id,
    reason: "password",
    onLocked: input.onLocked,
  });
  if (counted.accountLockedUntil) throw accountLockedError(counted.accountLockedUntil, deps.clock.now());
  const blocked = accountLockBlocks(gate, { passwordOk: false, hasSecondFactor: false });
  if (blocked) throw blocked;
  throw new AppError("INVALID_CREDENTIALS", "Your current password is not correct.", [
    { field: input.field, message: "Your current password is not correct." },
  ]);
}

/**
 * A successful sign-in (or a completed password reset) clears the account's failures and lock; with the user id (a
 * right code at the second step), the second-factor counter too.
 */
export async function clearAccountThrottle(deps: CoreContext, email: string, userId?: string): Promise<void> {
  await deleteAccountThrottle(deps.db, accountKey(deps.config, email));
  if (userId) await deleteAccountThrottle(deps.db, secondFactorKey(deps.config, userId));
}

/**
 * Operator action: ends an account's lock and forgets its failures (password and, when the account exists, second
 * factor), audited. Returns whether anything was there to clear.
 */
export async function unlockAccount(
  deps: CoreContext,
  meta: RequestMeta,
  input: { email: string; actorId?: string | null | undefined },
): Promise<boolean> {
  const email = normalizeEmail(input.email);
  const user = await findUserByEmail(deps.db, email);
  const keys = [accountKey(deps.config, email), ...(user ? [secondFactorKey(deps.config, user.id)] : [])];
  return deps.db.transaction(async (tx) => {
    let cleared = false;
    for (const key of keys) cleared = (await deleteAccountThrottleRow(tx, key)) || cleared;
    await audit(tx, meta, {
      event: "throttle.account_unlocked",
      outcome: "success",
      actorId: input.actorId,
      userId: user?.id ?? null,
      details: { cleared },
    });
    return cleared;
  });
}

export interface IpSuspensionView {
  ip: string;
  /** null once lifted. */
  suspendedUntil: string | null;
  suspensions: number;
}

const view = (row: IpSuspensionRow): IpSuspensionView => ({
  ip: row.ip,
  suspendedUntil: row.suspendedUntil?.toISOString() ?? null,
  suspensions: row.suspensions,
});

export async function listIpSuspensions(deps: CoreContext, limit = 100): Promise<IpSuspensionView[]> {
  return (await listActiveIpSuspensions(deps.db, deps.clock.now(), limit)).map(view);
}

/** Admin: lifts a live suspension (NOT_FOUND when the IP is not suspended), audited with the admin as actor. */
export async function liftIpSuspension(
  deps: CoreContext,
  meta: RequestMeta,
  input: { ip: string; actorId?: string | null | undefined },
): Promise<IpSuspensionView> {
  const ip = throttleIp(input.ip);
  return deps.db.transaction(async (tx) => {
    const row = await liftIpSuspensionRow(tx, ip, deps.clock.now());
    if (!row) throw new AppError("NOT_FOUND", "That IP address is not suspended.");
    await audit(tx, meta, { event: "throttle.ip_lifted", outcome: "success", actorId: input.actorId, details: { ip } });
    return view(row);
  });
}

/**
 * The email to the owner of an account when failed sign-ins lock it: when it unlocks, and that a password reset link
 * works during the lock. Sent only when the account exists (the lock itself happens for unknown emails too).
 */
export function accountLockedEmail(config: Config, to: string, until: Date): MailMessage {
  const product = config.mail.fromName;
  const when = `${until.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  const content = {
    subject: `Sign-ins to your ${product} account are paused`,
    intro: `There were several failed attempts to sign in to your ${product} account, so we paused sign-ins with your password until ${when}.`,
    action: { label: "Reset your password", url: new URL("/forgot-password", `${config.issuer}/`).toString() },
    outro:
      "If this was you, wait until then or reset your password now: a reset link works during the pause. If it was not you, your password was not accepted; choosing a new, unique one keeps it that way.",
  };
  const text = [content.intro, `${content.action.label}:\n${content.action.url}`, content.outro, `— ${product}`].join(
    "\n\n",
  );
  return {
    to,
    subject: content.subject,
    text,
    html: renderView("emails/account", { ...content, product }),
    kind: "account_locked",
  };
}
