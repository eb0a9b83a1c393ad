import { auditEvents, emailTokens, recoveryCodes, sessions, totpFactors, users } from "@tessera/db";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signInWithPassword, verifyCredentials } from "../../src/libraries/accounts/sign-in.ts";
import { sha256 } from "../../src/libraries/crypto.ts";
import {
  type AccountsTestApp,
  Browser,
  buildAccountsApp,
  createVerifiedAccount,
  linkFrom,
  PASSWORD,
  tokenFrom,
} from "./helpers.ts";

let t: AccountsTestApp;
beforeAll(async () => {
  t = await buildAccountsApp({ RATE_LIMIT_ENABLED: "false" });
});
afterAll(async () => t.close());

let n = 0;
const uniqueEmail = (prefix = "user") => `${prefix}${++n}@example.com`;

async function auditFor(userId: string) {
  return t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.userId, userId)).orderBy(auditEvents.id);
}

async function userByEmail(email: string) {
  const [row] = await t.app.ctx.db.select().from(users).where(eq(users.email, email));
  return row;
}

describe("a fresh installation", () => {
  it("has no accounts at all, so no default credentials sign in (the first admin comes from `tessera admin create`)", async () => {
    const fresh = await buildAccountsApp({ RATE_LIMIT_ENABLED: "false" });
    try {
      expect(await fresh.app.ctx.db.select().from(users)).toEqual([]);
      for (const [email, password] of [
        ["admin@tessera.local", "admin"],
        ["admin@example.com", "changeme123"],
        ["root@tessera.local", "password"],
      ] as const) {
        const res = await new Browser(fresh.app).json("POST", "/api/v1/login", { email, password });
        expect(res.json().error.code).toBe("INVALID_CREDENTIALS");
      }
    } finally {
      await fresh.close();
    }
  });
});

describe("POST /api/v1/register", () => {
  it("creates an unverified account, emails a verification link and answers 202 without signing in", async () => {
    const browser = new Browser(t.app);
    const email = uniqueEmail();
    const res = await browser.json("POST", "/api/v1/register", { email: email.toUpperCase(), password: PASSWORD });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ status: "check_email" });
    expect(res.headers["set-cookie"]).toBeUndefined();
    const user = await userByEmail(email);
    expect(user?.emailVerifiedAt).toBeNull();
    expect(user?.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    const mail = t.outbox.to(email)[0]!;
    expect(mail.kind).toBe("verify_email");
    expect(mail.text).toContain("http://localhost:3000/verify-email?token=");
    expect(mail.html).toContain("http://localhost:3000/verify-email?token=");
    // Only the SHA-256 of the token is stored.
    const token = tokenFrom(linkFrom(t.outbox, email, "verify_email"));
    const [stored] = await t.app.ctx.db.select().from(emailTokens).where(eq(emailTokens.userId, user!.id));
    expect(stored?.tokenHash).toBe(sha256(token));
    expect(JSON.stringify(stored)).not.toContain(token);
    expect((await auditFor(user!.id)).map((a) => [a.event, a.outcome])).toEqual([["user.registered", "success"]]);
  });

  it("for an existing email with the wrong password answers exactly like a fresh registration and warns the owner", async () => {
    const email = uniqueEmail();
    await createVerifiedAccount(t, email);
    const res = await new Browser(t.app).json("POST", "/api/v1/register", { email, password: "another long password" });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ status: "check_email" });
    expect(res.headers["set-cookie"]).toBeUndefined();
    expect(t.outbox.to(email)[0]?.kind).toBe("registration_attempt");
    expect(t.outbox.to(email)[0]?.text).not.toMatch(/token=/);
  });

  it("for an existing email with the right password simply signs the user in", async () => {
    const email = uniqueEmail();
    await createVerifiedAccount(t, email);
    const browser = new Browser(t.app);
    const res = await browser.json("POST", "/api/v1/register", { email, password: PASSWORD });
    expect(res.statusCode).toBe(200);
    expect(res.json().user.email).toBe(email);
    expect(browser.cookies.get("tessera_session")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await browser.json("GET", "/api/v1/me")).statusCode).toBe(200);
  });

  it("rejects weak, common and too-short passwords with field errors", async () => {
    const browser = new Browser(t.app);
    for (const [password, message] of [
      ["short1", "Use at least 8 characters."],
      ["password1", "This password is too common and easy to guess. Choose another one."],
      ["P@ssw0rd", "This password is too common and easy to guess. Choose another one."],
      ["x".repeat(257), "Use at most 256 characters."],
    ] as const) {
      const res = await browser.json("POST", "/api/v1/register", { email: uniqueEmail(), password });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: "WEAK_PASSWORD", fields: [{ field: "password", message }] });
    }
    const email = uniqueEmail("mirror");
    const same = await browser.json("POST", "/api/v1/register", { email, password: email });
    expect(same.json().error.code).toBe("WEAK_PASSWORD");
  });

  it("accepts 64-character and unicode passwords exactly as typed (no trimming)", async () => {
    const email = uniqueEmail();
    const password = `  ${"ü".repeat(30)} spaced 🙂 ${"z".repeat(26)}  `;
    expect([...password].length).toBeGreaterThanOrEqual(64);
    const browser = new Browser(t.app);
    expect((await browser.json("POST", "/api/v1/register", { email, password })).statusCode).toBe(202);
    const trimmed = await browser.json("POST", "/api/v1/login", { email, password: password.trim() });
    expect(trimmed.statusCode).toBe(401);
    const exact = await browser.json("POST", "/api/v1/login", { email, password });
    expect(exact.statusCode).toBe(200);
  });

  it("never truncates: a long password differing only after its first 72 or 128 characters is another password", async () => {
    const email = uniqueEmail("long");
    const password = `${"long passphrase ".repeat(12)}end`;
    expect(password.length).toBeGreaterThan(190);
    const browser = new Browser(t.app);
    expect((await browser.json("POST", "/api/v1/register", { email, password })).statusCode).toBe(202);
    for (const cut of [72, 128, password.length - 1]) {
      const res = await browser.json("POST", "/api/v1/login", { email, password: password.slice(0, cut) });
      expect(res.statusCode).toBe(401);
    }
    expect(
      (await browser.json("POST", "/api/v1/login", { email, password: `${password.slice(0, -1)}X` })).statusCode,
    ).toBe(401);
    expect((await browser.json("POST", "/api/v1/login", { email, password })).statusCode).toBe(200);
  });

  it("answers hostile input with 4xx catalog errors, never 500", async () => {
    const browser = new Browser(t.app);
    const cases: [unknown, string][] = [
      [{}, "VALIDATION_FAILED"],
      [{ email: "not-an-email", password: PASSWORD }, "VALIDATION_FAILED"],
      [{ email: 42, password: PASSWORD }, "VALIDATION_FAILED"],
      [{ email: ["a@example.com"], password: PASSWORD }, "VALIDATION_FAILED"],
      [{ email: "üñî@exämple.com", password: PASSWORD }, "VALIDATION_FAILED"],
      [{ email: `${"a".repeat(300)}@example.com`, password: PASSWORD }, "VALIDATION_FAILED"],
      [{ email: uniqueEmail(), password: { $ne: "" } }, "VALIDATION_FAILED"],
      [{ email: uniqueEmail(), password: PASSWORD, displayName: "a\u0000b" }, "VALIDATION_FAILED"],
      [{ email: uniqueEmail(), password: PASSWORD, displayName: "x".repeat(101) }, "VALIDATION_FAILED"],
      [[1, 2, 3], "VALIDATION_FAILED"],
      [null, "VALIDATION_FAILED"],
    ];
    for (const [body, code] of cases) {
      const res = await browser.json("POST", "/api/v1/register", body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe(code);
    }
    const missing = await browser.json("POST", "/api/v1/register", {});
    expect(missing.json().error.fields).toEqual([
      { field: "email", message: "Enter your email address." },
      { field: "password", message: "Enter your password." },
    ]);
  });

  it("rejects wrong content types, malformed JSON and 1 MB bodies", async () => {
    const form = await t.app.inject({
      method: "POST",
      url: "/api/v1/register",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: `email=${uniqueEmail()}&password=${encodeURIComponent(PASSWORD)}`,
    });
    expect(form.statusCode).toBe(415);
    expect(form.json().error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    const text = await t.app.inject({
      method: "POST",
      url: "/api/v1/login",
      headers: { "content-type": "text/plain" },
      payload: "{}",
    });
    expect(text.statusCode).toBe(415);
    const xml = await t.app.inject({
      method: "POST",
      url: "/api/v1/login",
      headers: { "content-type": "application/xml" },
      payload: "<a/>",
    });
    expect(xml.statusCode).toBe(415);
    const malformed = await t.app.inject({
      method: "POST",
      url: "/api/v1/login",
      headers: { "content-type": "application/json" },
      payload: '{"email": ',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe("MALFORMED_BODY");
    const huge = await t.app.inject({
      method: "POST",
      url: "/api/v1/register",
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({ email: uniqueEmail(), password: "p".repeat(1024 * 1024) }),
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("refuses cross-site browser requests (Sec-Fetch-Site) with CSRF_INVALID", async () => {
    const res = await new Browser(t.app).json(
      "POST",
      "/api/v1/login",
      { email: uniqueEmail(), password: PASSWORD },
      { "sec-fetch-site": "same-site" },
    );
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe("CSRF_INVALID");
  });

  it("registers only one account when the same email registers twice in parallel", async () => {
    const email = uniqueEmail("race");
    const results = await Promise.all(
      [1, 2, 3].map(() => new Browser(t.app).json("POST", "/api/v1/register", { email, password: PASSWORD })),
    );
    expect(results.map((r) => r.statusCode)).toEqual([202, 202, 202]);
    const rows = await t.app.ctx.db.select().from(users).where(eq(users.email, email));
    expect(rows).toHaveLength(1);
  });
});

describe("POST /api/v1/login and /api/v1/logout", () => {
  it("signs in with a session cookie (HttpOnly, SameSite=Lax, path /) and audits it", async () => {
    const email = uniqueEmail();
    await createVerifiedAccount(t, email);
    const browser = new Browser(t.app);
    const res = await browser.json("POST", "/api/v1/login", { email: ` ${email.toUpperCase()} `, password: PASSWORD });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.user).toMatchObject({ email, emailVerified: true });
    expect(body.session).toMatchObject({ current: true, amr: ["pwd"] });
    const cookie = res.cookies.find((c) => c.name === "tessera_session")!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" });
    expect(cookie.secure).toBeUndefined();
    expect(new Date(cookie.expires!).getTime()).toBe(
      Math.floor(new Date(body.session.expiresAt).getTime() / 1000) * 1000,
    );
    const events = (await auditFor(body.user.id)).map((a) => a.event);
    expect(events).toContain("user.signed_in");
    const signedIn = (await auditFor(body.user.id)).find(
      (a) => a.event === "user.signed_in" && a.sessionId === body.session.id,
    )!;
    expect(signedIn.userAgent).toContain("Chrome");
    expect(signedIn.ip).toBe("127.0.0.1");
  });

  it("answers wrong password and unknown email identically with INVALID_CREDENTIALS and audits the failure", async () => {
    const email = uniqueEmail();
    await createVerifiedAccount(t, email);
    const wrong = await new Browser(t.app).json("POST", "/api/v1/login", { email, password: "wrong password!!" });
    const unknown = await new Browser(t.app).json("POST", "/api/v1/login", {
      email: uniqueEmail("nobody"),
      password: "wrong password!!",
    });
    for (const res of [wrong, unknown]) {
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toMatchObject({
        code: "INVALID_CREDENTIALS",
        message: "The email or password is incorrect.",
      });
      expect(res.headers["set-cookie"]).toBeUndefined();
    }
    const user = await userByEmail(email);
    const failed = (await auditFor(user!.id)).filter((a) => a.event === "user.sign_in_failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ outcome: "failure", details: { reason: "INVALID_CREDENTIALS" } });
    expect(JSON.stringify(failed[0])).not.toContain(email);
  });

  it("a second sign-in on the same browser extends the session and rotates the cookie value", async () => {
    const email = uniqueEmail();
    const browser = await createVerifiedAccount(t, email);
    const first = await browser.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const firstCookie = browser.cookies.get("tessera_session")!;
    t.clock.advance(3600);
    const second = await browser.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const secondCookie = browser.cookies.get("tessera_session")!;
    expect(second.json().session.id).toBe(first.json().session.id);
    expect(secondCookie).not.toBe(firstCookie);
    expect(new Date(second.json().session.expiresAt).getTime()).toBeGreaterThan(
      new Date(first.json().session.expiresAt).getTime(),
    );
    // The old cookie value no longer works.
    const stale = await t.app.inject({
      method: "GET",
      url: "/api/v1/me",
      headers: { cookie: `tessera_session=${firstCookie}` },
    });
    expect(stale.statusCode).toBe(401);
  });

  it("signing in as another user on the same browser ends the previous user's session", async () => {
    const a = uniqueEmail();
    const b = uniqueEmail();
    const browser = await createVerifiedAccount(t, a);
    await createVerifiedAccount(t, b);
    const aSession = (await browser.json("GET", "/api/v1/me/sessions")).json().sessions[0].id;
    await browser.json("POST", "/api/v1/login", { email: b, password: PASSWORD });
    const [row] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, aSession));
    expect(row?.revokedReason).toBe("replaced");
  });

  it("refuses disabled accounts, and unverified ones only when ALLOW_UNVERIFIED_LOGIN=false", async () => {
    const email = uniqueEmail();
    await new Browser(t.app).json("POST", "/api/v1/register", { email, password: PASSWORD });
    const unverified = await new Browser(t.app).json("POST", "/api/v1/login", { email, password: PASSWORD });
    expect(unverified.statusCode).toBe(200);
    expect(unverified.json().user.emailVerified).toBe(false);

    await t.app.ctx.db.update(users).set({ disabledAt: new Date() }).where(eq(users.email, email));
    const disabled = await new Browser(t.app).json("POST", "/api/v1/login", { email, password: PASSWORD });
    expect(disabled.statusCode).toBe(403);
    expect(disabled.json().error.code).toBe("ACCOUNT_DISABLED");

    // The setting, through the library with the same database (building a second app costs seconds).
    const strict = {
      ...t.app.ctx,
      config: { ...t.app.ctx.config, sessions: { ...t.app.ctx.config.sessions, allowUnverifiedLogin: false } },
    };
    const strictEmail = uniqueEmail("strict");
    await new Browser(t.app).json("POST", "/api/v1/register", { email: strictEmail, password: PASSWORD });
    const meta = { ip: "127.0.0.1", userAgent: "test" };
    await expect(signInWithPassword(strict, { email: strictEmail, password: PASSWORD, meta })).rejects.toMatchObject({
      code: "EMAIL_NOT_VERIFIED",
      status: 403,
    });
    await expect(
      signInWithPassword(strict, { email: strictEmail, password: "nope nope nope", meta }),
    ).rejects.toMatchObject({
      code: "INVALID_CREDENTIALS",
    });
  });

  it("logout ends the session for every app and clears the cookie", async () => {
    const email = uniqueEmail();
    const browser = await createVerifiedAccount(t, email);
    const token = browser.cookies.get("tessera_session")!;
    const res = await browser.json("POST", "/api/v1/logout", {});
    expect(res.statusCode).toBe(204);
    const cleared = res.cookies.find((c) => c.name === "tessera_session")!;
    expect(cleared.value).toBe("");
    const [row] = await t.app.ctx.db
      .select()
      .from(sessions)
      .where(eq(sessions.tokenHash, sha256(token)));
    expect(row?.revokedReason).toBe("signed_out");
    const user = await userByEmail(email);
    expect((await auditFor(user!.id)).map((a) => a.event)).toContain("user.signed_out");
  });

  it("re-hashes the stored password on sign-in when the configured argon2 parameters rise", async () => {
    const email = uniqueEmail("rehash");
    await createVerifiedAccount(t, email);
    const before = (await userByEmail(email))!.passwordHash!;
    const stronger = {
      ...t.app.ctx,
      config: { ...t.app.ctx.config, passwords: { ...t.app.ctx.config.passwords, argon2TimeCost: 3 } },
    };
    const user = await verifyCredentials(stronger, email, PASSWORD);
    expect(before).toContain("t=2");
    const after = (await userByEmail(email))!.passwordHash!;
    expect(after).toMatch(/^\$argon2id\$v=19\$m=19456,t=3,p=1\$/);
    expect(user.id).toBe((await userByEmail(email))!.id);
    // The upgraded hash still verifies, with the old parameters' app as well.
    expect((await new Browser(t.app).json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(
      200,
    );
    await expect(verifyCredentials(stronger, email, "wrong password")).rejects.toMatchObject({
      code: "INVALID_CREDENTIALS",
    });
    expect((await userByEmail(email))!.passwordHash).toBe(after);
  });
});

describe("email verification", () => {
  it("is single use, and an older link stops working when a newer one is sent", async () => {
    const email = uniqueEmail();
    const browser = new Browser(t.app);
    await browser.json("POST", "/api/v1/register", { email, password: PASSWORD });
    const first = tokenFrom(linkFrom(t.outbox, email, "verify_email"));
    await browser.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const resent = await browser.json("POST", "/api/v1/me/verification", {});
    expect(resent.statusCode).toBe(202);
    const second = tokenFrom(linkFrom(t.outbox, email, "verify_email"));
    expect(second).not.toBe(first);

    const old = await new Browser(t.app).json("POST", "/api/v1/verify-email", { token: first });
    expect(old.statusCode).toBe(400);
    expect(old.json().error.code).toBe("INVALID_TOKEN");
    const ok = await new Browser(t.app).json("POST", "/api/v1/verify-email", { token: second });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().user.emailVerified).toBe(true);
    const again = await new Browser(t.app).json("POST", "/api/v1/verify-email", { token: second });
    expect(again.json().error.code).toBe("INVALID_TOKEN");
    const user = await userByEmail(email);
    expect((await auditFor(user!.id)).map((a) => a.event)).toContain("user.email_verified");
  });

  it("signs nobody in: someone who registered a victim's address cannot hand the victim a session on it", async () => {
    // The registrant chose the password; the address's owner opens the link from their mailbox.
    const victim = uniqueEmail("victim");
    const registrant = new Browser(t.app);
    await registrant.json("POST", "/api/v1/register", { email: victim, password: "registrant passphrase 7" });
    const token = tokenFrom(linkFrom(t.outbox, victim, "verify_email"));
    const owner = new Browser(t.app);
    const res = await owner.json("POST", "/api/v1/verify-email", { token });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ user: expect.objectContaining({ email: victim, emailVerified: true }) });
    expect(res.headers["set-cookie"]).toBeUndefined();
    expect((await owner.json("GET", "/api/v1/me")).statusCode).toBe(401);
    const user = await userByEmail(victim);
    expect(await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user!.id))).toEqual([]);
    expect((await auditFor(user!.id)).map((a) => a.event)).not.toContain("user.signed_in");
  });

  it("expires, and rejects garbage, reset tokens and parallel reuse", async () => {
    const email = uniqueEmail();
    await new Browser(t.app).json("POST", "/api/v1/register", { email, password: PASSWORD });
    const token = tokenFrom(linkFrom(t.outbox, email, "verify_email"));
    for (const bad of ["", "x", "a".repeat(43), "../../etc/passwd", "a".repeat(500)]) {
      const res = await new Browser(t.app).json("POST", "/api/v1/verify-email", { token: bad });
      expect(res.statusCode).toBe(400);
      expect(["INVALID_TOKEN", "VALIDATION_FAILED"]).toContain(res.json().error.code);
    }
    t.clock.advance(86400 + 1);
    const expired = await new Browser(t.app).json("POST", "/api/v1/verify-email", { token });
    expect(expired.json().error.code).toBe("INVALID_TOKEN");

    const other = uniqueEmail();
    await new Browser(t.app).json("POST", "/api/v1/register", { email: other, password: PASSWORD });
    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email: other });
    const resetToken = tokenFrom(linkFrom(t.outbox, other, "reset_password"));
    const wrongPurpose = await new Browser(t.app).json("POST", "/api/v1/verify-email", { token: resetToken });
    expect(wrongPurpose.json().error.code).toBe("INVALID_TOKEN");

    const verifyToken = tokenFrom(linkFrom(t.outbox, other, "verify_email"));
    const parallel = await Promise.all(
      [1, 2, 3, 4].map(() => new Browser(t.app).json("POST", "/api/v1/verify-email", { token: verifyToken })),
    );
    expect(parallel.map((r) => r.statusCode).sort()).toEqual([200, 400, 400, 400]);
  });
});

describe("password reset", () => {
  it("forgot-password answers the same for known and unknown emails; only a known one gets a link", async () => {
    const email = uniqueEmail();
    await createVerifiedAccount(t, email);
    const known = await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email });
    const unknownEmail = uniqueEmail("ghost");
    const unknown = await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email: unknownEmail });
    expect(known.statusCode).toBe(202);
    expect(unknown.statusCode).toBe(202);
    expect(known.body).toBe(unknown.body);
    expect(t.outbox.to(email)[0]?.kind).toBe("reset_password");
    expect(t.outbox.to(unknownEmail)).toHaveLength(0);
    expect(linkFrom(t.outbox, email, "reset_password")).toMatch(/^\/reset-password\?token=/);
  });

  it("builds the reset link from ISSUER whatever Host and X-Forwarded-Host the request carries", async () => {
    const email = uniqueEmail("host");
    await createVerifiedAccount(t, email);
    const res = await new Browser(t.app).json(
      "POST",
      "/api/v1/forgot-password",
      { email },
      { host: "evil.example", "x-forwarded-host": "evil.example", "x-forwarded-proto": "https" },
    );
    expect(res.statusCode).toBe(202);
    const mail = t.outbox.to(email).find((m) => m.kind === "reset_password");
    expect(mail?.text).toMatch(/^http:\/\/localhost:3000\/reset-password\?token=[A-Za-z0-9_-]{43}$/m);
    expect(`${mail?.text}${mail?.html}`).not.toContain("evil.example");
  });

  it("sets the new password, ends every session, and the link works once within 30 minutes", async () => {
    const email = uniqueEmail();
    const browser = await createVerifiedAccount(t, email);
    const other = new Browser(t.app);
    await other.json("POST", "/api/v1/login", { email, password: PASSWORD });
    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email });
    const token = tokenFrom(linkFrom(t.outbox, email, "reset_password"));

    const weak = await new Browser(t.app).json("POST", "/api/v1/reset-password", { token, password: "12345678" });
    expect(weak.json().error.code).toBe("WEAK_PASSWORD");
    const newPassword = "a brand new passphrase";
    const res = await new Browser(t.app).json("POST", "/api/v1/reset-password", { token, password: newPassword });
    expect(res.statusCode).toBe(204);
    expect((await browser.json("GET", "/api/v1/me")).statusCode).toBe(401);
    expect((await other.json("GET", "/api/v1/me")).statusCode).toBe(401);
    const reuse = await new Browser(t.app).json("POST", "/api/v1/reset-password", {
      token,
      password: "yet another passphrase",
    });
    expect(reuse.json().error.code).toBe("INVALID_TOKEN");
    expect((await new Browser(t.app).json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(
      401,
    );
    expect((await new Browser(t.app).json("POST", "/api/v1/login", { email, password: newPassword })).statusCode).toBe(
      200,
    );
    const user = await userByEmail(email);
    const events = (await auditFor(user!.id)).map((a) => a.event);
    expect(events).toEqual(
      expect.arrayContaining(["user.password_reset_requested", "user.password_reset", "session.ended"]),
    );
    expect(t.outbox.to(email)[0]?.kind).toBe("password_changed");

    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email });
    const late = tokenFrom(linkFrom(t.outbox, email, "reset_password"));
    t.clock.advance(30 * 60 + 1);
    const expired = await new Browser(t.app).json("POST", "/api/v1/reset-password", {
      token: late,
      password: "late passphrase here",
    });
    expect(expired.json().error.code).toBe("INVALID_TOKEN");
  });

  it("a reset link changes only the password of the user it was made for, whoever uses it", async () => {
    const owner = uniqueEmail("owner");
    const bystander = uniqueEmail("bystander");
    await createVerifiedAccount(t, owner);
    const signedIn = await createVerifiedAccount(t, bystander);
    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email: owner });
    const token = tokenFrom(linkFrom(t.outbox, owner, "reset_password"));
    const res = await signedIn.json("POST", "/api/v1/reset-password", { token, password: "owner passphrase 42" });
    expect(res.statusCode).toBe(204);
    expect(
      (await new Browser(t.app).json("POST", "/api/v1/login", { email: owner, password: "owner passphrase 42" }))
        .statusCode,
    ).toBe(200);
    expect(
      (await new Browser(t.app).json("POST", "/api/v1/login", { email: bystander, password: PASSWORD })).statusCode,
    ).toBe(200);
    // A verification link of another user verifies that user and leaves this browser's session as it was.
    const other = uniqueEmail("other");
    await new Browser(t.app).json("POST", "/api/v1/register", { email: other, password: PASSWORD });
    const verify = tokenFrom(linkFrom(t.outbox, other, "verify_email"));
    const bystanderBrowser = await createVerifiedAccount(t, uniqueEmail("bystander"));
    const before = (await bystanderBrowser.json("GET", "/api/v1/me")).json().user.email;
    const verified = await bystanderBrowser.json("POST", "/api/v1/verify-email", { token: verify });
    expect(verified.json().user.email).toBe(other);
    expect(verified.headers["set-cookie"]).toBeUndefined();
    expect((await bystanderBrowser.json("GET", "/api/v1/me")).json().user.email).toBe(before);
  });

  it("a newer reset link and a password change retire older links; one reset email per account per minute", async () => {
    const email = uniqueEmail();
    const browser = await createVerifiedAccount(t, email);
    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email });
    const first = tokenFrom(linkFrom(t.outbox, email, "reset_password"));
    // Within a minute a second request sends nothing (one reset email per account per minute)…
    const resent = await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email });
    expect(resent.statusCode).toBe(202);
    expect(t.outbox.to(email).filter((m) => m.kind === "reset_password")).toHaveLength(1);
    // …after it, a new link, and the first one stops working.
    t.clock.advance(61);
    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email });
    const second = tokenFrom(linkFrom(t.outbox, email, "reset_password"));
    expect(second).not.toBe(first);
    const old = await new Browser(t.app).json("POST", "/api/v1/reset-password", {
      token: first,
      password: "some new passphrase",
    });
    expect(old.json().error.code).toBe("INVALID_TOKEN");
    const change = await browser.json("POST", "/api/v1/me/password", {
      currentPassword: PASSWORD,
      newPassword: "changed passphrase 1",
    });
    expect(change.statusCode).toBe(204);
    const afterChange = await new Browser(t.app).json("POST", "/api/v1/reset-password", {
      token: second,
      password: "some new passphrase",
    });
    expect(afterChange.json().error.code).toBe("INVALID_TOKEN");
  });
});

describe("/api/v1/me", () => {
  it("needs a session", async () => {
    for (const [method, url, body] of [
      ["GET", "/api/v1/me", undefined],
      ["GET", "/api/v1/me/sessions", undefined],
      ["PATCH", "/api/v1/me", { displayName: "x" }],
      ["POST", "/api/v1/me/password", { currentPassword: "a", newPassword: "b" }],
      ["POST", "/api/v1/me/delete", { currentPassword: "a" }],
    ] as const) {
      const res = await new Browser(t.app).json(method, url, body);
      expect(res.statusCode, url).toBe(401);
      expect(res.json().error.code).toBe("UNAUTHENTICATED");
    }
    const forged = await t.app.inject({
      method: "GET",
      url: "/api/v1/me",
      headers: { cookie: "tessera_session=forged" },
    });
    expect(forged.statusCode).toBe(401);
  });

  it("updates the display name", async () => {
    const browser = await createVerifiedAccount(t, uniqueEmail());
    const res = await browser.json("PATCH", "/api/v1/me", { displayName: "  Ada Lovelace  " });
    expect(res.statusCode).toBe(200);
    expect(res.json().user.displayName).toBe("Ada Lovelace");
    const cleared = await browser.json("PATCH", "/api/v1/me", { displayName: "" });
    expect(cleared.json().user.displayName).toBeNull();
  });

  it("changing the password needs the current one and signs out the other sessions", async () => {
    const email = uniqueEmail();
    const browser = await createVerifiedAccount(t, email);
    const other = new Browser(t.app);
    await other.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const wrong = await browser.json("POST", "/api/v1/me/password", {
      currentPassword: "not my password",
      newPassword: "changed passphrase 2",
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toMatchObject({
      code: "INVALID_CREDENTIALS",
      fields: [{ field: "currentPassword", message: "Your current password is not correct." }],
    });
    const ok = await browser.json("POST", "/api/v1/me/password", {
      currentPassword: PASSWORD,
      newPassword: "changed passphrase 2",
    });
    expect(ok.statusCode).toBe(204);
    expect((await browser.json("GET", "/api/v1/me")).statusCode).toBe(200);
    expect((await other.json("GET", "/api/v1/me")).statusCode).toBe(401);
    const user = await userByEmail(email);
    expect((await auditFor(user!.id)).map((a) => a.event)).toContain("user.password_changed");
  });

  it("changing the email needs the current password and is confirmed from the new address", async () => {
    const email = uniqueEmail();
    const newEmail = uniqueEmail("new");
    const browser = await createVerifiedAccount(t, email);
    const wrong = await browser.json("POST", "/api/v1/me/email", { currentPassword: "nope nope", newEmail });
    expect(wrong.json().error.code).toBe("INVALID_CREDENTIALS");
    const same = await browser.json("POST", "/api/v1/me/email", { currentPassword: PASSWORD, newEmail: email });
    expect(same.json().error.code).toBe("VALIDATION_FAILED");
    const res = await browser.json("POST", "/api/v1/me/email", { currentPassword: PASSWORD, newEmail });
    expect(res.statusCode).toBe(202);
    expect((await browser.json("GET", "/api/v1/me")).json().user.email).toBe(email);
    const token = tokenFrom(linkFrom(t.outbox, newEmail, "change_email"));
    const confirmed = await new Browser(t.app).json("POST", "/api/v1/verify-email", { token });
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json().user).toMatchObject({ email: newEmail, emailVerified: true });
    expect(t.outbox.to(email)[0]?.kind).toBe("email_changed");
    expect(
      (await new Browser(t.app).json("POST", "/api/v1/login", { email: newEmail, password: PASSWORD })).statusCode,
    ).toBe(200);
    const user = await userByEmail(newEmail);
    expect((await auditFor(user!.id)).map((a) => a.event)).toContain("user.email_changed");
  });

  it("an email change to an address taken meanwhile is refused when confirmed", async () => {
    const browser = await createVerifiedAccount(t, uniqueEmail());
    const target = uniqueEmail("taken");
    await browser.json("POST", "/api/v1/me/email", { currentPassword: PASSWORD, newEmail: target });
    const token = tokenFrom(linkFrom(t.outbox, target, "change_email"));
    await createVerifiedAccount(t, target);
    const res = await new Browser(t.app).json("POST", "/api/v1/verify-email", { token });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe("CONFLICT");
  });

  it("six accounts confirming a change to one address at once: one wins, the others get CONFLICT, never a 500", async () => {
    const target = uniqueEmail("contested");
    const tokens: string[] = [];
    for (const owner of [1, 2, 3, 4, 5, 6].map((i) => uniqueEmail(`contender${i}-`))) {
      const browser = await createVerifiedAccount(t, owner);
      await browser.json("POST", "/api/v1/me/email", { currentPassword: PASSWORD, newEmail: target });
      tokens.push(tokenFrom(linkFrom(t.outbox, target, "change_email")));
    }
    const results = await Promise.all(
      tokens.map((token) => new Browser(t.app).json("POST", "/api/v1/verify-email", { token })),
    );
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    expect(results.find((r) => r.statusCode === 409)?.json().error.code).toBe("CONFLICT");
    expect(await t.app.ctx.db.select().from(users).where(eq(users.email, target))).toHaveLength(1);
  });

  it("lists sessions and ends one, all others, but never another user's", async () => {
    const email = uniqueEmail();
    const browser = await createVerifiedAccount(t, email);
    const phone = new Browser(t.app, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1");
    const laptop = new Browser(t.app);
    await phone.json("POST", "/api/v1/login", { email, password: PASSWORD });
    await laptop.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const list = (await browser.json("GET", "/api/v1/me/sessions")).json().sessions;
    expect(list).toHaveLength(3);
    expect(list.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    const phoneSession = (await phone.json("GET", "/api/v1/me/sessions"))
      .json()
      .sessions.find((s: { current: boolean }) => s.current);

    const stranger = await createVerifiedAccount(t, uniqueEmail("stranger"));
    const foreign = await stranger.json("POST", `/api/v1/me/sessions/${phoneSession.id}/end`, {});
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().error.code).toBe("SESSION_NOT_FOUND");
    expect((await phone.json("GET", "/api/v1/me")).statusCode).toBe(200);
    const notUuid = await browser.json("POST", "/api/v1/me/sessions/not-a-uuid/end", {});
    expect(notUuid.statusCode).toBe(400);

    const ended = await browser.json("POST", `/api/v1/me/sessions/${phoneSession.id}/end`, {});
    expect(ended.statusCode).toBe(204);
    expect((await phone.json("GET", "/api/v1/me")).statusCode).toBe(401);
    const twice = await browser.json("POST", `/api/v1/me/sessions/${phoneSession.id}/end`, {});
    expect(twice.json().error.code).toBe("SESSION_NOT_FOUND");

    const others = await browser.json("POST", "/api/v1/me/sessions/end-others", {});
    expect(others.json()).toEqual({ ended: 1 });
    expect((await laptop.json("GET", "/api/v1/me")).statusCode).toBe(401);
    expect((await browser.json("GET", "/api/v1/me")).statusCode).toBe(200);
    const user = await userByEmail(email);
    const endedEvents = (await auditFor(user!.id)).filter((a) => a.event === "session.ended");
    expect(endedEvents).toHaveLength(2);
  });

  it("deleting the account needs the password, ends sessions and removes personal data", async () => {
    const email = uniqueEmail("delete");
    const browser = await createVerifiedAccount(t, email);
    await browser.json("PATCH", "/api/v1/me", { displayName: "Grace" });
    const other = new Browser(t.app);
    await other.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const id = (await browser.json("GET", "/api/v1/me")).json().user.id;
    const wrong = await browser.json("POST", "/api/v1/me/delete", { currentPassword: "nope nope" });
    expect(wrong.json().error.code).toBe("INVALID_CREDENTIALS");
    await t.app.ctx.db.insert(totpFactors).values({ userId: id, secretEncrypted: "sealed", confirmedAt: new Date() });
    await t.app.ctx.db.insert(recoveryCodes).values({ userId: id, codeHash: sha256("recovery") });
    const res = await browser.json("POST", "/api/v1/me/delete", { currentPassword: PASSWORD });
    expect(res.statusCode).toBe(204);
    // The deleting browser's session cookie is cleared: exactly one Set-Cookie, for tessera_session, empty and expired.
    expect(res.cookies.map((c) => c.name)).toEqual(["tessera_session"]);
    expect(res.cookies[0]).toMatchObject({ name: "tessera_session", value: "", path: "/", httpOnly: true });
    expect(res.cookies[0]?.expires?.getTime()).toBe(0);
    expect(browser.cookies.has("tessera_session")).toBe(false);
    expect(await t.app.ctx.db.select().from(totpFactors).where(eq(totpFactors.userId, id))).toEqual([]);
    expect(await t.app.ctx.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, id))).toEqual([]);
    expect(await t.app.ctx.db.select().from(emailTokens).where(eq(emailTokens.userId, id))).toEqual([]);
    expect((await other.json("GET", "/api/v1/me")).statusCode).toBe(401);
    const [row] = await t.app.ctx.db.select().from(users).where(eq(users.id, id));
    expect(row).toMatchObject({ email: `deleted-${id}@deleted.invalid`, displayName: null, passwordHash: null });
    expect(row?.deletedAt).not.toBeNull();
    const leftover = await t.app.ctx.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.userId, id)));
    // Both sessions (this browser's and the other one's) are still there, ended and without IP or user agent. The
    // length comes first: an empty list would pass every() and prove nothing.
    expect(leftover).toHaveLength(2);
    for (const session of leftover) {
      expect(session).toMatchObject({ ip: null, userAgent: null, revokedReason: "account_deleted" });
      expect(session.revokedAt).not.toBeNull();
    }
    const audit = await auditFor(id);
    expect(audit.map((a) => a.event)).toContain("user.deleted");
    expect(JSON.stringify(audit)).not.toContain(email);
    expect((await new Browser(t.app).json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(
      401,
    );
    // The address can be used again.
    expect((await new Browser(t.app).json("POST", "/api/v1/register", { email, password: PASSWORD })).statusCode).toBe(
      202,
    );
    expect(await userByEmail(email)).toBeDefined();
  });
});
