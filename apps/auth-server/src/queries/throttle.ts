import { accountThrottles, type Executor, ipSuspensions } from "@tessera/db";
import { and, asc, eq, gt, gte, isNotNull, isNull, lte, or, sql } from "drizzle-orm";
import { prepared } from "./prepared.ts";

export type IpSuspensionRow = typeof ipSuspensions.$inferSelect;
export type AccountThrottleRow = typeof accountThrottles.$inferSelect;

const ts = (date: Date) => sql`${date.toISOString()}::timestamptz`;

export async function findIpSuspension(db: Executor, ip: string): Promise<IpSuspensionRow | null> {
  const [row] = await prepared(db, "ip_suspension", (d) =>
    d
      .select()
      .from(ipSuspensions)
      .where(eq(ipSuspensions.ip, sql.placeholder("ip")))
      .limit(1)
      .prepare("ip_suspension"),
  ).execute({ ip });
  return row ?? null;
}

/**
 * Counts one failed sign-in from an IP in a single atomic statement (parallel failures are all counted). A window
 * older than `windowStart` starts over at 1; the backoff exponent (`suspensions`) is forgotten once the last
 * suspension ended before `decayBefore`.
 */
export async function incrementIpFailures(
  db: Executor,
  ip: string,
  now: Date,
  windowStart: Date,
  decayBefore: Date,
): Promise<IpSuspensionRow> {
  const stale = sql`${ipSuspensions.windowStartedAt} <= ${ts(windowStart)}`;
  const [row] = await db
    .insert(ipSuspensions)
    .values({ ip, failures: 1, windowStartedAt: now })
    .onConflictDoUpdate({
      target: ipSuspensions.ip,
      set: {
        failures: sql`case when ${stale} then 1 else ${ipSuspensions.failures} + 1 end`,
        windowStartedAt: sql`case when ${stale} then ${ts(now)} else ${ipSuspensions.windowStartedAt} end`,
        suspensions: sql`case when ${ipSuspensions.suspendedUntil} <= ${ts(decayBefore)} then 0 else ${ipSuspensions.suspensions} end`,
      },
    })
    .returning();
  if (!row) throw new Error("upsert returned no row");
  return row;
}

/**
 * Suspends an IP that reached `maxFailures`, unless it is already suspended. Conditional on the `suspensions` count
 * the caller saw, so of several parallel requests crossing the threshold exactly one suspends (and audits).
 */
export async function suspendIp(
  db: Executor,
  input: { ip: string; now: Date; until: Date; maxFailures: number; seenSuspensions: number },
): Promise<IpSuspensionRow | null> {
  const [row] = await db
    .update(ipSuspensions)
    .set({
      suspendedUntil: input.until,
      suspensions: sql`${ipSuspensions.suspensions} + 1`,
      failures: 0,
      windowStartedAt: input.now,
      liftedAt: null,
    })
    .where(
      and(
        eq(ipSuspensions.ip, input.ip),
        eq(ipSuspensions.suspensions, input.seenSuspensions),
        gte(ipSuspensions.failures, input.maxFailures),
        or(isNull(ipSuspensions.suspendedUntil), lte(ipSuspensions.suspendedUntil, input.now)),
      ),
    )
    .returning();
  return row ?? null;
}

/** Lifts a live suspension (admin); the backoff starts over. Returns null when the IP is not suspended. */
export async function liftIpSuspension(db: Executor, ip: string, now: Date): Promise<IpSuspensionRow | null> {
  const [row] = await db
    .update(ipSuspensions)
    .set({ suspendedUntil: null, failures: 0, suspensions: 0, windowStartedAt: now, liftedAt: now })
    .where(and(eq(ipSuspensions.ip, ip), gt(ipSuspensions.suspendedUntil, now)))
    .returning();
  return row ?? null;
}

export async function listActiveIpSuspensions(db: Executor, now: Date, limit: number): Promise<IpSuspensionRow[]> {
  return db
    .select()
    .from(ipSuspensions)
    .where(and(isNotNull(ipSuspensions.suspendedUntil), gt(ipSuspensions.suspendedUntil, now)))
    .orderBy(asc(ipSuspensions.suspendedUntil), asc(ipSuspensions.ip))
    .limit(limit);
}

export async function findAccountThrottle(db: Executor, key: string): Promise<AccountThrottleRow | null> {
  const [row] = await prepared(db, "account_throttle", (d) =>
    d
      .select()
      .from(accountThrottles)
      .where(eq(accountThrottles.key, sql.placeholder("key")))
      .limit(1)
      .prepare("account_throttle"),
  ).execute({ key });
  return row ?? null;
}

/**
 * Counts one failed attempt for an account key atomically (`failures = failures + 1 ... RETURNING`), so N parallel
 * wrong guesses leave exactly N more. Failures older than `windowStart` (by the last failure) are forgotten.
 */
export async function incrementAccountFailures(
  db: Executor,
  key: string,
  now: Date,
  windowStart: Date,
): Promise<AccountThrottleRow> {
  const [row] = await db
    .insert(accountThrottles)
    .values({ key, failures: 1, lastFailureAt: now })
    .onConflictDoUpdate({
      target: accountThrottles.key,
      set: {
        failures: sql`case when ${accountThrottles.lastFailureAt} <= ${ts(windowStart)} then 1 else ${accountThrottles.failures} + 1 end`,
        // A forgotten window also forgets the lock backoff, unless a lock is still running.
        locks: sql`case when ${accountThrottles.lastFailureAt} <= ${ts(windowStart)} and (${accountThrottles.lockedUntil} is null or ${accountThrottles.lockedUntil} <= ${ts(now)}) then 0 else ${accountThrottles.locks} end`,
        lastFailureAt: now,
      },
    })
    .returning();
  if (!row) throw new Error("upsert returned no row");
  return row;
}

/**
 * Locks an account key that reached the threshold, unless a lock is already running. Conditional on the `locks`
 * count the caller saw, so exactly one of several parallel failures locks (and sends the one notification).
 */
export async function lockAccount(
  db: Executor,
  input: { key: string; now: Date; until: Date; threshold: number; seenLocks: number },
): Promise<AccountThrottleRow | null> {
  const [row] = await db
    .update(accountThrottles)
    .set({ lockedUntil: input.until, locks: sql`${accountThrottles.locks} + 1` })
    .where(
      and(
        eq(accountThrottles.key, input.key),
        eq(accountThrottles.locks, input.seenLocks),
        gte(accountThrottles.failures, input.threshold),
        or(isNull(accountThrottles.lockedUntil), lte(accountThrottles.lockedUntil, input.now)),
      ),
    )
    .returning();
  return row ?? null;
}

export async function deleteAccountThrottle(db: Executor, key: string): Promise<void> {
  await prepared(db, "account_throttle_delete", (d) =>
    d
      .delete(accountThrottles)
      .where(eq(accountThrottles.key, sql.placeholder("key")))
      .prepare("account_throttle_delete"),
  ).execute({ key });
}

/** Deletes one key's counter; true when there was one. */
export async function deleteAccountThrottleRow(db: Executor, key: string): Promise<boolean> {
  const deleted = await db
    .delete(accountThrottles)
    .where(eq(accountThrottles.key, key))
    .returning({ key: accountThrottles.key });
  return deleted.length > 0;
}
