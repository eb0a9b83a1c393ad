import { accountThrottles, auditEvents, users } from "@tessera/db";
import { usingPostgres } from "@tessera/db/testing";
import { and, eq } from "drizzle-orm";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { accountKey } from "../../src/libraries/throttle/keys.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, formFor, linkFrom, PASSWORD } from "../accounts/helpers.ts";
import { seedAdmin } from "../admin/helpers.ts";
import { createUser } from "../oauth/helpers.ts";

/**
 * Failed sign-in throttling through the real sign-in endpoints: per-account delays and lock (unknown emails alike),
 * the owner's email, unlock by time, by a reset link, and through a second factor; IP suspension that a rotated
 * X-Forwarded-For does not escape; 50 parallel wrong passwords all counted.
 */
let t: AccountsTestApp;
let ipCounter = 0;
/** A fresh client IP per request, so IP suspension stays out of the account tests. */
const freshIp = () => `10.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}.1`;

beforeAll(async () => {
  t = await buildAccountsApp({
    RATE_LIMIT_LOGIN: "10000/60",
    RATE_LIMIT_OTP: "10000/60",
    RATE_LIMIT_FORGOT_PASSWORD: "10000/60",
    RATE_LIMIT_RESET_PASSWORD: "10000/60",
    THROTTLE_IP_MAX_FAILURES: "8",
    THROTTLE_IP_SUSPEND_BASE_SECONDS: "60",
    THROTTLE_ACCOUNT_FREE_FAILURES: "2",
    THROTTLE_ACCOUNT_DELAY_BASE_SECONDS: "1",
    THROTTLE_ACCOUNT_DELAY_MAX_SECONDS: "4",
    THROTTLE_ACCOUNT_LOCK_THRESHOLD: "5",
    THROTTLE_ACCOUNT_LOCK_SECONDS: "300",
  });
});
afterAll(() => t.close());

function login(email: string, password: string, ip = freshIp(), headers: Record<string, string> = {}) {
  return t.app.inject({
    method: "POST",
    url: "/api/v1/login",
    remoteAddress: ip,
    headers: { "content-type": "application/json", ...headers },
    payload: JSON.stringify({ email, password }),
  });
}

const code = (res: LightMyRequestResponse) => (res.json() as { error?: { code: string } }).error?.code;

/** Fails until the account is locked, moving the clock past each delay; returns the responses' codes. */
async function failUntilLocked(email: string): Promise<string[]> {
  const codes: string[] = [];
  for (let i = 0; i < 5; i++) {
    codes.push(code(await login(email, "wrong password!")) ?? "");
    t.clock.advance(4);
  }
  return codes;
}

describe("account throttling", () => {
  it("answers known and unknown emails the same: delays, then ACCOUNT_LOCKED with Retry-After", async () => {
    const known = "known-throttle@example.com";
    await createUser(t.app, { email: known, password: PASSWORD });
    const unknown = "nobody-throttle@example.com";
    for (const email of [known, unknown]) {
      expect(code(await login(email, "wrong password!"))).toBe("INVALID_CREDENTIALS");
      expect(code(await login(email, "wrong password!"))).toBe("INVALID_CREDENTIALS");
      expect(code(await login(email, "wrong password!"))).toBe("INVALID_CREDENTIALS");
      // The third failure asks for a 1-second wait before the next attempt, even with the right password.
      const waiting = await login(email, PASSWORD);
      expect(waiting.statusCode).toBe(429);
      expect(waiting.headers["retry-after"]).toBe("1");
      expect(code(waiting)).toBe("LOGIN_THROTTLED");
      t.clock.advance(1);
      expect(code(await login(email, "wrong password!"))).toBe("INVALID_CREDENTIALS");
      t.clock.advance(2);
      const locked = await login(email, "wrong password!");
      expect(locked.statusCode).toBe(429);
      expect(code(locked)).toBe("ACCOUNT_LOCKED");
      expect(locked.headers["retry-after"]).toBe("300");
    }
    // Only the existing account's owner is emailed, once.
    const mails = t.outbox.to(known).filter((m) => m.kind === "account_locked");
    expect(mails).toHaveLength(1);
    expect(mails[0]?.text).toContain("/forgot-password");
    expect(t.outbox.to(unknown)).toHaveLength(0);
    // Both locks and the refused waiting attempts are audited; the known account by its id, with the client's IP.
    const knownUser = await t.app.ctx.db.select().from(users).where(eq(users.email, known));
    const locks = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "throttle.account_locked"));
    expect(locks.filter((e) => e.userId === knownUser[0]?.id)).toHaveLength(1);
    expect(locks.filter((e) => e.userId === null).length).toBeGreaterThanOrEqual(1);
    expect(locks.every((e) => e.outcome === "failure" && /^10\./.test(e.ip ?? ""))).toBe(true);
    const blocked = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "login.blocked"));
    expect(blocked.filter((e) => e.details?.reason === "account_delay").length).toBeGreaterThanOrEqual(2);
    // The table holds neither address.
    const keys = (await t.app.ctx.db.select().from(accountThrottles)).map((r) => r.key);
    expect(keys).toContain(accountKey(t.app.ctx.config, unknown));
    expect(keys.join()).not.toContain("@");
  });

  it("keeps the right password out during a lock, unlocks by time, and a success clears the counter", async () => {
    const email = "unlock-by-time@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    expect((await failUntilLocked(email)).at(-1)).toBe("ACCOUNT_LOCKED");
    t.clock.advance(4);
    expect(code(await login(email, PASSWORD))).toBe("ACCOUNT_LOCKED");
    t.clock.advance(300);
    expect((await login(email, PASSWORD)).statusCode).toBe(200);
    const [row] = await t.app.ctx.db
      .select()
      .from(accountThrottles)
      .where(eq(accountThrottles.key, accountKey(t.app.ctx.config, email)));
    expect(row).toBeUndefined();
  });

  it("a password reset link ends a lock", async () => {
    const email = "unlock-by-reset@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    await failUntilLocked(email);
    const b = new Browser(t.app);
    expect((await b.json("POST", "/api/v1/forgot-password", { email })).statusCode).toBe(202);
    const link = linkFrom(t.outbox, email, "reset_password");
    const token = new URL(link, "http://x").searchParams.get("token") ?? "";
    const newPassword = "a brand new passphrase 42";
    expect((await b.json("POST", "/api/v1/reset-password", { token, password: newPassword })).statusCode).toBe(204);
    expect((await login(email, newPassword)).statusCode).toBe(200);
  });

  it("a user with a second factor still gets in during a lock: right password, then the code", async () => {
    const email = "unlock-by-mfa@example.com";
    const user = await createUser(t.app, { email, password: PASSWORD });
    const meta = { ip: "127.0.0.1", userAgent: "vitest" };
    const { secret } = await beginTotpEnrolment(t.app.ctx, meta, user);
    await confirmTotpEnrolment(t.app.ctx, meta, { userId: user.id, code: currentCode(secret, t.clock.now()) });
    await failUntilLocked(email);
    t.clock.advance(4);
    // A wrong password still says locked; the right one goes on to the code step.
    expect(code(await login(email, "wrong password!"))).toBe("ACCOUNT_LOCKED");
    t.clock.advance(4);
    const b = new Browser(t.app);
    const step1 = await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    expect(code(step1)).toBe("MFA_REQUIRED");
    t.clock.advance(30);
    const step2 = await b.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) });
    expect(step2.statusCode).toBe(200);
    expect(step2.json().session.amr).toEqual(["pwd", "otp"]);
  });

  it("a password reset ends a password lock but not a lock from wrong codes (the mailbox is not the second factor)", async () => {
    const email = "otp-lock-reset@example.com";
    const user = await createUser(t.app, { email, password: PASSWORD });
    const meta = { ip: "127.0.0.1", userAgent: "vitest" };
    const { secret } = await beginTotpEnrolment(t.app.ctx, meta, user);
    await confirmTotpEnrolment(t.app.ctx, meta, { userId: user.id, code: currentCode(secret, t.clock.now()) });
    const codeStep = async (password: string, otp: string) => {
      const b = new Browser(t.app);
      expect(code(await b.json("POST", "/api/v1/login", { email, password }))).toBe("MFA_REQUIRED");
      return b.json("POST", "/api/v1/login/otp", { code: otp });
    };
    const answers: (string | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      answers.push(code(await codeStep(PASSWORD, "000000")));
      t.clock.advance(5);
    }
    expect(answers).toEqual(["INVALID_OTP", "INVALID_OTP", "INVALID_OTP", "INVALID_OTP", "ACCOUNT_LOCKED"]);
    // Whoever reads the mailbox resets the password…
    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email });
    const token = new URL(linkFrom(t.outbox, email, "reset_password"), "http://x").searchParams.get("token") ?? "";
    const newPassword = "mailbox holder passphrase";
    expect(
      (await new Browser(t.app).json("POST", "/api/v1/reset-password", { token, password: newPassword })).statusCode,
    ).toBe(204);
    // …and the code step is still locked, even for the right code, until the lock ends.
    t.clock.advance(30);
    expect(code(await codeStep(newPassword, currentCode(secret, t.clock.now())))).toBe("ACCOUNT_LOCKED");
    t.clock.advance(300);
    expect((await codeStep(newPassword, currentCode(secret, t.clock.now()))).statusCode).toBe(200);
  });

  it("the hosted sign-in page answers a locked account with a readable page that points to a reset", async () => {
    const email = "locked-page@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    await failUntilLocked(email);
    t.clock.advance(4);
    const res = await new Browser(t.app).submit("/login", { email, password: PASSWORD });
    expect(res.statusCode).toBe(429);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
    expect(res.body).toContain("Sign-in paused");
    expect(res.body).toContain("Too many failed sign-ins for this account. Try again later.");
    expect(res.body).toContain('href="/forgot-password"');
  });

  it("registering an existing email with its password does not bypass a lock or a second factor", async () => {
    const email = "register-bypass@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    await failUntilLocked(email);
    t.clock.advance(4);
    const b = new Browser(t.app);
    const res = await b.json("POST", "/api/v1/register", { email, password: PASSWORD });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ status: "check_email" });
    expect(b.cookies.has("tessera_session")).toBe(false);
  });

  it("the password asked again by account forms is counted and throttled like a sign-in (a stolen session cannot guess it)", async () => {
    const email = "stolen-session@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    const b = new Browser(t.app);
    expect((await b.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(200);
    const send = (url: string, body: object) =>
      t.app.inject({
        method: "POST",
        url,
        remoteAddress: freshIp(),
        headers: { "content-type": "application/json", cookie: b.cookieHeader() },
        payload: JSON.stringify(body),
      });
    const change = (currentPassword: string) =>
      send("/api/v1/me/password", { currentPassword, newPassword: "a new passphrase 77" });
    expect(code(await change("guess one!"))).toBe("INVALID_CREDENTIALS");
    expect(code(await send("/api/v1/me/email", { currentPassword: "guess two!", newEmail: "x@example.com" }))).toBe(
      "INVALID_CREDENTIALS",
    );
    expect(code(await send("/api/v1/me/delete", { currentPassword: "guess three!" }))).toBe("INVALID_CREDENTIALS");
    // Three failures: the next attempt must wait, even with the right password.
    const waiting = await change(PASSWORD);
    expect(waiting.statusCode).toBe(429);
    expect(code(waiting)).toBe("LOGIN_THROTTLED");
    expect(waiting.headers["retry-after"]).toBe("1");
    t.clock.advance(1);
    expect(code(await send("/api/v1/mfa/totp/disable", { password: "guess four!", code: "123456" }))).toBe(
      "INVALID_CREDENTIALS",
    );
    t.clock.advance(2);
    const locked = await change("guess five!");
    expect(locked.statusCode).toBe(429);
    expect(code(locked)).toBe("ACCOUNT_LOCKED");
    expect(locked.headers["retry-after"]).toBe("300");
    t.clock.advance(4);
    // During the lock the right password changes nothing either, and the password sign-in is locked too.
    expect(code(await change(PASSWORD))).toBe("ACCOUNT_LOCKED");
    expect(code(await login(email, PASSWORD))).toBe("ACCOUNT_LOCKED");
    expect(t.outbox.to(email).filter((m) => m.kind === "account_locked")).toHaveLength(1);
    t.clock.advance(300);
    expect((await change(PASSWORD)).statusCode).toBe(204);
    // Each wrong password is in the audit log under the account, with the form field it came from.
    const [user] = await t.app.ctx.db.select().from(users).where(eq(users.email, email));
    const failed = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "user.password_check_failed"), eq(auditEvents.userId, user!.id)))
      .orderBy(auditEvents.id);
    expect(failed.map((e) => e.details?.field)).toEqual([
      "currentPassword",
      "currentPassword",
      "currentPassword",
      "password",
      "currentPassword",
    ]);
  });

  it(`50 parallel wrong passwords for one account: each sees the failures before it, so the delay holds inside the burst (${usingPostgres() ? "PostgreSQL" : "PGlite"})`, async () => {
    const email = "parallel-http@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    const responses = await Promise.all(Array.from({ length: 50 }, () => login(email, "wrong password!")));
    // Two free failures and a third that asks for a 1-second wait: the other 47 are refused without a password check.
    const codes = responses.map(code);
    expect(codes.filter((c) => c === "INVALID_CREDENTIALS")).toHaveLength(3);
    expect(codes.filter((c) => c === "LOGIN_THROTTLED")).toHaveLength(47);
    const [row] = await t.app.ctx.db
      .select()
      .from(accountThrottles)
      .where(eq(accountThrottles.key, accountKey(t.app.ctx.config, email)));
    expect(row?.failures).toBe(3);
    // After the wait the right password gets in and clears the counter.
    t.clock.advance(1);
    expect((await login(email, PASSWORD)).statusCode).toBe(200);
  });

  it("parallel guesses through the account forms are in the same line as sign-ins", async () => {
    const email = "parallel-forms@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    const b = new Browser(t.app);
    expect((await b.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(200);
    const guesses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2
          ? login(email, "wrong password!")
          : t.app.inject({
              method: "POST",
              url: "/api/v1/me/password",
              remoteAddress: freshIp(),
              headers: { "content-type": "application/json", cookie: b.cookieHeader() },
              payload: JSON.stringify({ currentPassword: "wrong password!", newPassword: "a new passphrase 77" }),
            }),
      ),
    );
    const codes = guesses.map(code);
    expect(codes.filter((c) => c === "INVALID_CREDENTIALS")).toHaveLength(3);
    expect(codes.filter((c) => c === "LOGIN_THROTTLED")).toHaveLength(17);
  });
});

describe("IP suspension", () => {
  it("suspends the socket address whatever X-Forwarded-For says when no proxy is trusted", async () => {
    const ip = "203.0.113.50";
    for (let i = 0; i < 8; i++) {
      const res = await login(`spray${i}@example.com`, "Winter2026!", ip, { "x-forwarded-for": `198.18.0.${i}` });
      expect(code(res)).toBe("INVALID_CREDENTIALS");
    }
    const suspended = await login("spray99@example.com", "Winter2026!", ip, { "x-forwarded-for": "198.18.9.9" });
    expect(suspended.statusCode).toBe(429);
    expect(code(suspended)).toBe("IP_SUSPENDED");
    expect(suspended.headers["retry-after"]).toBe("60");
    // Another address is not affected.
    expect(code(await login("spray99@example.com", "Winter2026!", "203.0.113.51"))).toBe("INVALID_CREDENTIALS");

    const events = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "throttle.ip_suspended"));
    expect(events.map((e) => e.details?.ip)).toContain(ip);

    // An admin lifts it.
    const { authorization } = await seedAdmin(t.app, "throttle-admin@tessera.test");
    const lift = await t.app.inject({
      method: "DELETE",
      url: `/admin/api/v1/ip-suspensions/${ip}`,
      headers: { authorization },
    });
    expect(lift.statusCode).toBe(200);
    expect(code(await login("spray99@example.com", "Winter2026!", ip))).toBe("INVALID_CREDENTIALS");
  });

  it("the hosted sign-in page answers a suspended IP with a readable page and Retry-After", async () => {
    const ip = "203.0.113.60";
    for (let i = 0; i < 8; i++) await login(`page-spray${i}@example.com`, "Winter2026!", ip);
    const b = new Browser(t.app);
    const page = await b.get("/login");
    const res = await t.app.inject({
      method: "POST",
      url: "/login",
      remoteAddress: ip,
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: b.cookieHeader() },
      payload: new URLSearchParams({
        ...formFor(page.body, "/login"),
        email: "x@example.com",
        password: "y",
      }).toString(),
    });
    expect(res.statusCode).toBe(429);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    expect(res.headers["retry-after"]).toBe("60");
    expect(res.body).toContain("Too many failed sign-ins from this network. Try again later.");
  });
});
