import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, formFor, PASSWORD } from "../accounts/helpers.ts";
import { createUser } from "../oauth/helpers.ts";

/**
 * ASVS 7.5.1 (issue #16): turning two-step verification on needs the password or a fresh sign-in. A session alone,
 * older than REAUTH_WINDOW_SECONDS, can neither start enrolment nor finish an old one and keep its recovery codes.
 */
let t: AccountsTestApp;

beforeAll(async () => {
  t = await buildAccountsApp({
    RATE_LIMIT_LOGIN: "1000/60",
    RATE_LIMIT_MFA: "1000/60",
    THROTTLE_ACCOUNT_FREE_FAILURES: "100",
    REAUTH_WINDOW_SECONDS: "300",
  });
});
afterAll(() => t.close());

async function signedIn(email: string) {
  await createUser(t.app, { email, password: PASSWORD });
  const b = new Browser(t.app);
  expect((await b.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(200);
  return b;
}

describe("two-step enrolment re-authenticates", () => {
  it("API: a fresh sign-in may start; an older session needs the password, and a wrong one is refused", async () => {
    const b = await signedIn("reauth-api@example.com");
    t.clock.advance(301);
    const stale = await b.json("POST", "/api/v1/mfa/totp", {});
    expect(stale.statusCode).toBe(401);
    expect(stale.json().error).toMatchObject({
      code: "STEP_UP_REQUIRED",
      fields: [{ field: "confirm_password", message: "Enter your password to continue." }],
    });
    expect((await b.json("GET", "/api/v1/mfa")).json()).toEqual({
      enabled: false,
      pending: false,
      recoveryCodesLeft: 0,
    });
    const wrong = await b.json("POST", "/api/v1/mfa/totp", { password: "not the password" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe("INVALID_CREDENTIALS");
    const ok = await b.json("POST", "/api/v1/mfa/totp", { password: PASSWORD });
    expect(ok.statusCode).toBe(201);
    const confirm = await b.json("POST", "/api/v1/mfa/totp/confirm", {
      code: currentCode(ok.json().secret, t.clock.now()),
    });
    expect(confirm.statusCode).toBe(200);
    expect(confirm.json().recoveryCodes).toHaveLength(10);
  });

  it("API: an enrolment left pending past its window cannot be confirmed by the session alone", async () => {
    const b = await signedIn("reauth-pending@example.com");
    const start = await b.json("POST", "/api/v1/mfa/totp", {});
    expect(start.statusCode).toBe(201);
    t.clock.advance(15 * 60 + 1);
    const late = await b.json("POST", "/api/v1/mfa/totp/confirm", {
      code: currentCode(start.json().secret, t.clock.now()),
    });
    expect(late.statusCode).toBe(409);
    expect(late.json().error.code).toBe("MFA_ENROLMENT_EXPIRED");
    expect((await b.json("GET", "/api/v1/mfa")).json()).toMatchObject({ enabled: false, recoveryCodesLeft: 0 });
  });

  it("pages: the setup form asks for the password once the sign-in is old, and shows no secret without it", async () => {
    const b = await signedIn("reauth-page@example.com");
    t.clock.advance(301);
    const manage = await b.get("/account/mfa");
    expect(manage.body).toContain('name="password"');
    const refused = await b.post("/account/mfa/setup", formFor(manage.body, "/account/mfa/setup"));
    expect(refused.statusCode).toBe(401);
    expect(refused.body).toContain("Enter your password to continue.");
    expect(refused.body).not.toContain('data-testid="totp-secret"');
    const again = await b.get("/account/mfa");
    const ok = await b.post("/account/mfa/setup", { ...formFor(again.body, "/account/mfa/setup"), password: PASSWORD });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('data-testid="totp-secret"');
  });

  it("pages: a stale pending enrolment's secret is not shown again on a wrong code", async () => {
    const b = await signedIn("reauth-page-pending@example.com");
    const manage = await b.get("/account/mfa");
    const setup = await b.post("/account/mfa/setup", formFor(manage.body, "/account/mfa/setup"));
    expect(setup.body).toContain('data-testid="totp-secret"');
    t.clock.advance(15 * 60 + 1);
    const wrong = await b.post("/account/mfa/confirm", {
      ...formFor(setup.body, "/account/mfa/confirm"),
      code: "000000",
    });
    expect(wrong.statusCode).toBe(303);
    expect(wrong.headers.location).toBe("/account/mfa");
  });
});
