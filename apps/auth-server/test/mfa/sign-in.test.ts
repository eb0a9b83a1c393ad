import { mfaChallenges, sessions, users } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import {
  type AccountsTestApp,
  Browser,
  buildAccountsApp,
  formFor,
  linkFrom,
  PASSWORD,
  tokenFrom,
} from "../accounts/helpers.ts";
import { basic, createUser, FORM, form, registerClient } from "../oauth/helpers.ts";

/**
 * TOTP through the wire (inject): enrolment and confirmation, the second sign-in step that cannot be skipped, recovery
 * codes, replayed codes, guess limits, and turning it off — on the JSON API and on the hosted pages.
 */
let t: AccountsTestApp;

beforeAll(async () => {
  t = await buildAccountsApp({
    RATE_LIMIT_LOGIN: "1000/60",
    RATE_LIMIT_OTP: "1000/60",
    RATE_LIMIT_MFA: "1000/60",
    THROTTLE_IP_MAX_FAILURES: "1000",
    THROTTLE_ACCOUNT_FREE_FAILURES: "100",
    THROTTLE_ACCOUNT_LOCK_THRESHOLD: "1000",
    MFA_CHALLENGE_MAX_ATTEMPTS: "3",
  });
});
afterAll(() => t.close());

const cookieNames = (res: { cookies: { name: string; value: string }[] }) =>
  Object.fromEntries(res.cookies.map((c) => [c.name, c.value]));

/** Enrols a factor through the JSON API as the signed-in user; returns the secret and the recovery codes. */
async function enrolThroughApi(b: Browser) {
  const start = await b.json("POST", "/api/v1/mfa/totp", {});
  expect(start.statusCode).toBe(201);
  const { secret, otpauthUri, qrCodeDataUrl } = start.json();
  expect(otpauthUri).toContain(`secret=${secret}`);
  expect(qrCodeDataUrl).toMatch(/^data:image\/svg\+xml;base64,/);
  const confirm = await b.json("POST", "/api/v1/mfa/totp/confirm", { code: currentCode(secret, t.clock.now()) });
  expect(confirm.statusCode).toBe(200);
  const { recoveryCodes } = confirm.json() as { recoveryCodes: string[] };
  expect(recoveryCodes).toHaveLength(10);
  return { secret: secret as string, recoveryCodes };
}

async function userWithFactor(email: string) {
  await createUser(t.app, { email, password: PASSWORD });
  const b = new Browser(t.app);
  expect((await b.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(200);
  const enrolled = await enrolThroughApi(b);
  await b.json("POST", "/api/v1/logout", {});
  return enrolled;
}

describe("JSON API", () => {
  it("enrols, then sign-in answers 401 MFA_REQUIRED with a challenge cookie and no session until the code", async () => {
    const email = "api-mfa@example.com";
    const { secret } = await userWithFactor(email);
    const b = new Browser(t.app);
    const login = await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    expect(login.statusCode).toBe(401);
    expect(login.json().error).toMatchObject({ code: "MFA_REQUIRED", status: 401 });
    const set = cookieNames(login);
    expect(Object.keys(set)).toEqual(["tessera_mfa"]);
    const cookie = login.cookies.find((c) => c.name === "tessera_mfa");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" });
    expect(set.tessera_mfa).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Only the hash is stored.
    const rows = await t.app.ctx.db.select().from(mfaChallenges);
    expect(rows.some((r) => r.tokenHash === set.tessera_mfa)).toBe(false);
    // Not signed in: the challenge is not a session.
    expect((await b.json("GET", "/api/v1/me")).statusCode).toBe(401);

    const wrong = await b.json("POST", "/api/v1/login/otp", { code: "000000" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toMatchObject({ code: "INVALID_OTP", fields: [{ field: "code" }] });

    t.clock.advance(30);
    const ok = await b.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().session.amr).toEqual(["pwd", "otp"]);
    expect(ok.cookies.find((c) => c.name === "tessera_mfa")?.value).toBe("");
    expect(cookieNames(ok).tessera_session).toBeTruthy();
    expect((await b.json("GET", "/api/v1/me")).statusCode).toBe(200);
    // The challenge is spent.
    b.cookies.set("tessera_mfa", set.tessera_mfa ?? "");
    const again = await b.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) });
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe("MFA_CHALLENGE_EXPIRED");
  });

  it("rejects a replayed code on a new challenge, accepts a recovery code once", async () => {
    const email = "api-replay@example.com";
    const { secret, recoveryCodes } = await userWithFactor(email);
    t.clock.advance(30);
    const code = currentCode(secret, t.clock.now());
    const first = new Browser(t.app);
    await first.json("POST", "/api/v1/login", { email, password: PASSWORD });
    expect((await first.json("POST", "/api/v1/login/otp", { code })).statusCode).toBe(200);

    const second = new Browser(t.app);
    await second.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const replay = await second.json("POST", "/api/v1/login/otp", { code });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe("INVALID_OTP");
    const recovery = await second.json("POST", "/api/v1/login/otp", { code: recoveryCodes[0] });
    expect(recovery.statusCode).toBe(200);
    expect((await second.json("GET", "/api/v1/mfa")).json()).toEqual({
      enabled: true,
      pending: false,
      recoveryCodesLeft: 9,
    });

    const third = new Browser(t.app);
    await third.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const reused = await third.json("POST", "/api/v1/login/otp", { code: recoveryCodes[0] });
    expect(reused.json().error.code).toBe("INVALID_OTP");
  });

  it("a password reset or change ends second steps still waiting on the old password", async () => {
    const email = "api-reset-challenge@example.com";
    const { secret } = await userWithFactor(email);
    const intruder = new Browser(t.app);
    expect((await intruder.json("POST", "/api/v1/login", { email, password: PASSWORD })).json().error.code).toBe(
      "MFA_REQUIRED",
    );
    // The owner resets the password from the emailed link.
    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email });
    const token = tokenFrom(linkFrom(t.outbox, email, "reset_password"));
    const reset = await new Browser(t.app).json("POST", "/api/v1/reset-password", {
      token,
      password: "reset pass 1234",
    });
    expect(reset.statusCode).toBe(204);
    t.clock.advance(30);
    const late = await intruder.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) });
    expect(late.statusCode).toBe(401);
    expect(late.json().error.code).toBe("MFA_CHALLENGE_EXPIRED");
    expect((await intruder.json("GET", "/api/v1/me")).statusCode).toBe(401);

    // The same after a password change by the signed-in owner.
    const owner = new Browser(t.app);
    await owner.json("POST", "/api/v1/login", { email, password: "reset pass 1234" });
    t.clock.advance(30);
    expect(
      (await owner.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) })).statusCode,
    ).toBe(200);
    const second = new Browser(t.app);
    await second.json("POST", "/api/v1/login", { email, password: "reset pass 1234" });
    const changed = await owner.json("POST", "/api/v1/me/password", {
      currentPassword: "reset pass 1234",
      newPassword: "changed pass 5678",
    });
    expect(changed.statusCode).toBe(204);
    t.clock.advance(30);
    const after = await second.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) });
    expect(after.json().error.code).toBe("MFA_CHALLENGE_EXPIRED");
  });

  it("limits guesses per challenge and lets the challenge expire", async () => {
    const email = "api-guesses@example.com";
    const { secret } = await userWithFactor(email);
    const b = new Browser(t.app);
    await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    for (let i = 0; i < 3; i++) {
      expect((await b.json("POST", "/api/v1/login/otp", { code: "111111" })).json().error.code).toBe("INVALID_OTP");
    }
    t.clock.advance(30);
    const spent = await b.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) });
    expect(spent.statusCode).toBe(401);
    expect(spent.json().error.code).toBe("MFA_CHALLENGE_EXPIRED");
    expect(spent.cookies.find((c) => c.name === "tessera_mfa")?.value).toBe("");

    await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    t.clock.advance(301);
    const expired = await b.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) });
    expect(expired.json().error.code).toBe("MFA_CHALLENGE_EXPIRED");
    const none = await new Browser(t.app).json("POST", "/api/v1/login/otp", { code: "123456" });
    expect(none.json().error.code).toBe("MFA_CHALLENGE_EXPIRED");
  });

  it("an unverified account cannot turn two-step verification on (someone who registered another's address)", async () => {
    const email = "unverified-mfa@example.com";
    await createUser(t.app, { email, password: PASSWORD, verified: false });
    const b = new Browser(t.app);
    expect((await b.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(200);
    const start = await b.json("POST", "/api/v1/mfa/totp", {});
    expect(start.statusCode).toBe(403);
    expect(start.json().error).toMatchObject({
      code: "EMAIL_NOT_VERIFIED",
      message: "Confirm your email address before you turn on two-step verification.",
    });
    const manage = await b.get("/account/mfa");
    const page = await b.post("/account/mfa/setup", formFor(manage.body, "/account/mfa/setup"));
    expect(page.statusCode).toBe(403);
    expect(page.body).toContain("Confirm your email address before you turn on two-step verification.");
    expect((await b.json("GET", "/api/v1/mfa")).json()).toEqual({
      enabled: false,
      pending: false,
      recoveryCodesLeft: 0,
    });
  });

  it("a trusted client's direct sign-in cannot skip the second step: invalid_grant and no session", async () => {
    const email = "direct-mfa@example.com";
    await userWithFactor(email);
    const game = await registerClient(t.app, { name: "Game", directSignIn: true });
    const res = await t.app.inject({
      method: "POST",
      url: "/api/v1/clients/sessions",
      headers: { ...FORM, authorization: basic(game.clientId, game.secret) },
      payload: form({ username: email, password: PASSWORD }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: "invalid_grant",
      error_description: "This account uses a second factor; sign in through Tessera's sign-in page.",
      tessera_code: "MFA_REQUIRED",
    });
    const [user] = await t.app.ctx.db.select().from(users).where(eq(users.email, email));
    const live = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user!.id));
    expect(live.filter((s) => !s.revokedAt)).toEqual([]);
  });

  it("refuses cross-site and non-JSON state changes on the two-step API (CSRF)", async () => {
    const email = "mfa-csrf@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    const b = new Browser(t.app);
    await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    for (const url of ["/api/v1/mfa/totp", "/api/v1/mfa/totp/disable", "/api/v1/login/otp"]) {
      const cross = await b.json("POST", url, {}, { "sec-fetch-site": "cross-site" });
      expect(cross.statusCode).toBe(403);
      expect(cross.json().error.code).toBe("CSRF_INVALID");
      const sibling = await b.json("POST", url, {}, { "sec-fetch-site": "same-site" });
      expect(sibling.json().error.code).toBe("CSRF_INVALID");
      const plain = await t.app.inject({
        method: "POST",
        url,
        headers: { cookie: b.cookieHeader(), "content-type": "text/plain" },
        payload: "{}",
      });
      expect(plain.statusCode).toBe(415);
      expect(plain.json().error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    }
    expect((await b.json("GET", "/api/v1/mfa")).json()).toEqual({
      enabled: false,
      pending: false,
      recoveryCodesLeft: 0,
    });
  });

  it("validates the code field and needs a session for the account endpoints", async () => {
    const b = new Browser(t.app);
    const bad = await b.json("POST", "/api/v1/login/otp", { code: 123456 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: "VALIDATION_FAILED", fields: [{ field: "code" }] });
    expect((await b.json("GET", "/api/v1/mfa")).json().error.code).toBe("UNAUTHENTICATED");
    expect((await b.json("POST", "/api/v1/mfa/totp", {})).json().error.code).toBe("UNAUTHENTICATED");
    const form = await t.app.inject({
      method: "POST",
      url: "/api/v1/mfa/totp",
      payload: "a=b",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(form.statusCode).toBe(415);
  });

  it("turns off only with the password and a code", async () => {
    const email = "api-disable@example.com";
    const { secret } = await userWithFactor(email);
    const b = new Browser(t.app);
    await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    t.clock.advance(30);
    await b.json("POST", "/api/v1/login/otp", { code: currentCode(secret, t.clock.now()) });
    t.clock.advance(30);
    const wrongPassword = await b.json("POST", "/api/v1/mfa/totp/disable", {
      password: "wrong password here",
      code: currentCode(secret, t.clock.now()),
    });
    expect(wrongPassword.statusCode).toBe(401);
    expect(wrongPassword.json().error).toMatchObject({ code: "INVALID_CREDENTIALS", fields: [{ field: "password" }] });
    const wrongCode = await b.json("POST", "/api/v1/mfa/totp/disable", { password: PASSWORD, code: "000000" });
    expect(wrongCode.json().error.code).toBe("INVALID_OTP");
    const ok = await b.json("POST", "/api/v1/mfa/totp/disable", {
      password: PASSWORD,
      code: currentCode(secret, t.clock.now()),
    });
    expect(ok.statusCode).toBe(204);
    // The owner hears about both changes.
    const kinds = t.outbox.to(email).map((m) => m.kind);
    expect(kinds).toEqual(expect.arrayContaining(["mfa_enabled", "mfa_disabled"]));
    expect(t.outbox.to(email).find((m) => m.kind === "mfa_disabled")?.text).toContain("/account/mfa");
    // The password alone signs in again.
    expect((await new Browser(t.app).json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(
      200,
    );
  });
});

describe("hosted pages", () => {
  it("enrols on /account/mfa, then the sign-in form leads to /login/otp and back to return_to", async () => {
    const email = "pages-mfa@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    const b = new Browser(t.app);
    expect((await b.submit("/login", { email, password: PASSWORD })).statusCode).toBe(303);

    const manage = await b.get("/account/mfa");
    expect(manage.statusCode).toBe(200);
    expect(manage.body).toContain("Set up an authenticator app");
    const setup = await b.post("/account/mfa/setup", formFor(manage.body, "/account/mfa/setup"));
    expect(setup.statusCode).toBe(200);
    expect(setup.headers["cache-control"]).toBe("no-store");
    const secret = /data-testid="totp-secret">([A-Z2-7 ]+)</.exec(setup.body)?.[1]?.replace(/ /g, "") ?? "";
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(setup.body).toMatch(/<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);

    const wrong = await b.post("/account/mfa/confirm", {
      ...formFor(setup.body, "/account/mfa/confirm"),
      code: "000000",
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("That code is not valid.");
    expect(wrong.body).toContain(secret.match(/.{4}/g)?.join(" ") ?? "");
    const confirmed = await b.post("/account/mfa/confirm", {
      ...formFor(wrong.body, "/account/mfa/confirm"),
      code: currentCode(secret, t.clock.now()),
    });
    expect(confirmed.statusCode).toBe(200);
    const codes = [...confirmed.body.matchAll(/<li><code>([0-9a-z-]+)<\/code><\/li>/g)].map((m) => m[1]);
    expect(codes).toHaveLength(10);
    expect((await b.get("/account/mfa")).body).toContain('data-testid="recovery-left">10<');
    expect(t.outbox.to(email).map((m) => m.kind)).toContain("mfa_enabled");

    // Sign in again on another browser: password, then the code page; no session in between.
    const other = new Browser(t.app);
    const password = await other.submit("/login?return_to=%2Faccount", { email, password: PASSWORD });
    expect(password.statusCode).toBe(303);
    expect(password.headers.location).toBe("/login/otp?return_to=%2Faccount");
    expect([...other.cookies.keys()]).not.toContain("tessera_session");
    expect((await other.get("/account")).headers.location).toBe("/login?return_to=%2Faccount");
    const page = await other.get("/login/otp?return_to=%2Faccount");
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('autocomplete="one-time-code"');

    const bad = await other.post("/login/otp", { ...formFor(page.body, "/login/otp"), code: "000000" });
    expect(bad.statusCode).toBe(401);
    expect(bad.body).toContain("That code is not valid.");
    t.clock.advance(30);
    const done = await other.post("/login/otp", {
      ...formFor(bad.body, "/login/otp"),
      code: currentCode(secret, t.clock.now()),
    });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe("/account");
    expect(other.cookies.has("tessera_session")).toBe(true);
    expect(other.cookies.has("tessera_mfa")).toBe(false);
    expect((await other.get("/account")).statusCode).toBe(200);

    // A recovery code on the page works once.
    const third = new Browser(t.app);
    await third.submit("/login", { email, password: PASSWORD });
    const viaRecovery = await third.submit("/login/otp", { code: codes[0] ?? "" });
    expect(viaRecovery.statusCode).toBe(303);
  });

  it("without a challenge, /login/otp sends the browser to sign in; a spent one says so", async () => {
    const b = new Browser(t.app);
    const res = await b.get("/login/otp?return_to=%2Faccount");
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/login?return_to=%2Faccount");
    b.cookies.set("tessera_mfa", "made-up-value");
    const page = await b.get("/login/otp");
    const post = await b.post("/login/otp", { ...formFor(page.body, "/login/otp"), code: "123456" });
    expect(post.statusCode).toBe(401);
    expect(post.body).toContain("This sign-in has expired or was already used.");
    expect(b.cookies.has("tessera_mfa")).toBe(false);
  });

  it("the code form needs its CSRF token", async () => {
    const res = await new Browser(t.app).post("/login/otp", { code: "123456" });
    expect(res.statusCode).toBe(403);
  });

  it("turns off from the account page with the password and a code", async () => {
    const email = "pages-disable@example.com";
    const { secret } = await userWithFactor(email);
    const b = new Browser(t.app);
    await b.submit("/login", { email, password: PASSWORD });
    t.clock.advance(30);
    await b.submit("/login/otp", { code: currentCode(secret, t.clock.now()) });
    const wrong = await b.submit(
      "/account/mfa",
      { password: "not my password", code: "000000" },
      "/account/mfa/disable",
    );
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("Your current password is not correct.");
    t.clock.advance(30);
    const off = await b.submit(
      "/account/mfa",
      { password: PASSWORD, code: currentCode(secret, t.clock.now()) },
      "/account/mfa/disable",
    );
    expect(off.statusCode).toBe(303);
    expect(off.headers.location).toBe("/account/mfa?notice=disabled");
    expect((await b.get("/account/mfa?notice=disabled")).body).toContain("Two-step verification is off.");
  });
});
