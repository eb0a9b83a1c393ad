import { auditEvents, ipSuspensions } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import type { CoreContext } from "../../src/context.ts";
import { AppError } from "../../src/errors/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { clearAccountThrottle, recordSignInFailure } from "../../src/libraries/throttle/failures.ts";
import { accountLockBlocks, checkSignIn } from "../../src/libraries/throttle/gate.ts";
import { accountKey } from "../../src/libraries/throttle/keys.ts";
import { liftIpSuspension, listIpSuspensions } from "../../src/libraries/throttle/operator.ts";
import { findAccountThrottle } from "../../src/queries/throttle.ts";

/** The throttling rules against a real migrated database (PGlite, or PostgreSQL with TEST_DATABASE_URL). */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let deps: CoreContext;
let clock: TestClock;

beforeAll(async () => {
  database = await createTestDatabase();
  clock = new TestClock(new Date("2026-01-01T00:00:00Z"));
  deps = {
    db: database.db,
    clock,
    config: testConfig({
      THROTTLE_IP_MAX_FAILURES: "5",
      THROTTLE_IP_WINDOW_SECONDS: "600",
      THROTTLE_IP_SUSPEND_BASE_SECONDS: "60",
      THROTTLE_IP_SUSPEND_MAX_SECONDS: "200",
      THROTTLE_ACCOUNT_FREE_FAILURES: "2",
      THROTTLE_ACCOUNT_DELAY_BASE_SECONDS: "1",
      THROTTLE_ACCOUNT_DELAY_MAX_SECONDS: "8",
      THROTTLE_ACCOUNT_LOCK_THRESHOLD: "6",
      THROTTLE_ACCOUNT_LOCK_SECONDS: "300",
      THROTTLE_ACCOUNT_LOCK_MAX_SECONDS: "900",
      THROTTLE_ACCOUNT_WINDOW_SECONDS: "3600",
    }),
  };
});
afterAll(async () => database.close());

const meta = (ip: string) => ({ ip, userAgent: "vitest" });

async function expectError(promise: Promise<unknown>, code: string, retryAfter?: string) {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe(code);
  if (retryAfter) expect((error as AppError).headers?.["retry-after"]).toBe(retryAfter);
}

describe("IP suspension", () => {
  it("suspends an IP after too many failures with exponential backoff and a cap, and it expires by itself", async () => {
    const ip = "192.0.2.10";
    for (let i = 0; i < 4; i++) {
      const r = await recordSignInFailure(deps, meta(ip), { email: `user${i}@example.com`, reason: "password" });
      expect(r.ipSuspendedUntil).toBeNull();
    }
    const fifth = await recordSignInFailure(deps, meta(ip), { email: "user5@example.com", reason: "password" });
    expect(fifth.ipSuspendedUntil?.toISOString()).toBe(new Date(clock.now().getTime() + 60_000).toISOString());
    await expectError(checkSignIn(deps, meta(ip), { email: "anyone@example.com" }), "IP_SUSPENDED", "60");
    // Other IPs are unaffected.
    expect(await checkSignIn(deps, meta("192.0.2.11"), { email: "anyone@example.com" })).toEqual({
      accountLocked: false,
      retryAfterSeconds: 0,
      counted: false,
    });

    clock.advance(60);
    await checkSignIn(deps, meta(ip), { email: "anyone@example.com" });
    // Second suspension: twice as long; third: capped at 200 s.
    for (let i = 0; i < 5; i++)
      await recordSignInFailure(deps, meta(ip), { email: `x${i}@example.com`, reason: "password" });
    await expectError(checkSignIn(deps, meta(ip), { email: "a@example.com" }), "IP_SUSPENDED", "120");
    clock.advance(120);
    for (let i = 0; i < 5; i++)
      await recordSignInFailure(deps, meta(ip), { email: `y${i}@example.com`, reason: "password" });
    await expectError(checkSignIn(deps, meta(ip), { email: "a@example.com" }), "IP_SUSPENDED", "200");
    clock.advance(200);

    const events = await database.db.select().from(auditEvents).where(eq(auditEvents.event, "throttle.ip_suspended"));
    expect(events.filter((e) => e.details?.ip === ip)).toHaveLength(3);
  });

  it("forgets failures outside the window", async () => {
    const ip = "192.0.2.20";
    for (let i = 0; i < 4; i++)
      await recordSignInFailure(deps, meta(ip), { email: `w${i}@example.com`, reason: "password" });
    clock.advance(601);
    const r = await recordSignInFailure(deps, meta(ip), { email: "w9@example.com", reason: "password" });
    expect(r.ipSuspendedUntil).toBeNull();
    const [row] = await database.db.select().from(ipSuspensions).where(eq(ipSuspensions.ip, ip));
    expect(row?.failures).toBe(1);
  });

  it("an admin can list and lift a suspension, audited; lifting twice is NOT_FOUND", async () => {
    const ip = "192.0.2.30";
    for (let i = 0; i < 5; i++)
      await recordSignInFailure(deps, meta(ip), { email: `l${i}@example.com`, reason: "password" });
    expect((await listIpSuspensions(deps)).map((s) => s.ip)).toContain(ip);
    const lifted = await liftIpSuspension(deps, meta("127.0.0.1"), { ip, actorId: null });
    expect(lifted).toEqual({ ip, suspendedUntil: null, suspensions: 0 });
    await checkSignIn(deps, meta(ip), { email: "a@example.com" });
    await expectError(liftIpSuspension(deps, meta("127.0.0.1"), { ip }), "NOT_FOUND");
    const [event] = await database.db.select().from(auditEvents).where(eq(auditEvents.event, "throttle.ip_lifted"));
    expect(event?.details).toEqual({ ip });
  });
});

describe("account throttling", () => {
  it("adds increasing delays, then a time-based lock, counting unknown emails the same way", async () => {
    const email = "Nobody.Here@Example.com";
    let ipN = 0;
    // Spread over IPs so IP suspension does not interfere.
    const fail = () => recordSignInFailure(deps, meta(`198.18.0.${++ipN}`), { email, reason: "password" });
    await fail();
    await fail();
    // Two free failures: no wait.
    expect((await checkSignIn(deps, meta("198.18.1.1"), { email })).accountLocked).toBe(false);
    await fail(); // 3rd: 1 s
    await expectError(
      checkSignIn(deps, meta("198.18.1.1"), { email: " nobody.here@example.COM " }),
      "LOGIN_THROTTLED",
      "1",
    );
    clock.advance(1);
    await checkSignIn(deps, meta("198.18.1.1"), { email });
    await fail(); // 4th: 2 s
    await expectError(checkSignIn(deps, meta("198.18.1.1"), { email }), "LOGIN_THROTTLED", "2");
    clock.advance(2);
    await fail(); // 5th: 4 s
    clock.advance(4);
    let locked = 0;
    const r = await recordSignInFailure(deps, meta("198.18.2.1"), {
      email,
      reason: "password",
      onLocked: async () => {
        locked++;
      },
    }); // 6th: lock 300 s
    expect(locked).toBe(1);
    expect(r.accountLockedUntil?.getTime()).toBe(clock.now().getTime() + 300_000);
    clock.advance(8); // past the (capped) delay
    const gate = await checkSignIn(deps, meta("198.18.1.1"), { email });
    expect(gate).toEqual({ accountLocked: true, retryAfterSeconds: 292, counted: true });
    // Wrong password, or right password without a second factor: locked. Right password + factor: goes on to the code.
    const blocked = accountLockBlocks(gate, { passwordOk: false, hasSecondFactor: true });
    expect(blocked?.code).toBe("ACCOUNT_LOCKED");
    expect(blocked?.headers).toEqual({ "retry-after": "292" });
    expect(accountLockBlocks(gate, { passwordOk: true, hasSecondFactor: false })?.code).toBe("ACCOUNT_LOCKED");
    expect(accountLockBlocks(gate, { passwordOk: true, hasSecondFactor: true })).toBeNull();

    // Time-based unlock.
    clock.advance(292);
    expect((await checkSignIn(deps, meta("198.18.1.1"), { email })).accountLocked).toBe(false);
    // The next failure locks again, twice as long.
    const again = await recordSignInFailure(deps, meta("198.18.2.2"), { email, reason: "password" });
    expect(again.accountLockedUntil?.getTime()).toBe(clock.now().getTime() + 600_000);

    // A successful sign-in (or a reset) clears it all.
    await clearAccountThrottle(deps, email);
    expect(await findAccountThrottle(database.db, accountKey(deps.config, email))).toBeNull();
    expect(await checkSignIn(deps, meta("198.18.1.1"), { email })).toEqual({
      accountLocked: false,
      retryAfterSeconds: 0,
      counted: false,
    });
  });

  it("keys accounts by an HMAC of the normalized email, never the address itself", () => {
    const key = accountKey(deps.config, "  Someone@Example.COM");
    expect(key).toBe(accountKey(deps.config, "someone@example.com"));
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(key).not.toBe(accountKey(testConfig({ TESSERA_MASTER_KEY: "22".repeat(32) }), "someone@example.com"));
  });

  it("counts 50 parallel wrong guesses for one account, all of them, and locks exactly once", async () => {
    const email = "parallel@example.com";
    let locks = 0;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        recordSignInFailure(deps, meta(`198.19.${Math.floor(i / 4)}.${i}`), {
          email,
          reason: "password",
          onLocked: async () => {
            locks++;
          },
        }),
      ),
    );
    const row = await findAccountThrottle(database.db, accountKey(deps.config, email));
    expect(row?.failures).toBe(50);
    expect(new Set(results.map((r) => r.accountFailures)).size).toBe(50);
    expect(locks).toBe(1);
    expect(results.filter((r) => r.accountLockedUntil).length).toBe(1);
    expect(row?.locks).toBe(1);
  });
});
