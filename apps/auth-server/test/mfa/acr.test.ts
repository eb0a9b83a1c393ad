import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionCookieName } from "../../src/http/session.ts";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { signIn } from "../../src/libraries/sessions.ts";
import { Browser, PASSWORD } from "../accounts/helpers.ts";
import type { TestApp } from "../helpers.ts";
import {
  authorizeQuery,
  buildOAuthApp,
  createUser,
  getCode,
  locationParams,
  pkce,
  redeem,
  registerClient,
  type TestClient,
} from "../oauth/helpers.ts";

/** `acr_values` demanding a second factor, and `amr`/`acr` in the ID token. */
let t: TestApp;
let client: TestClient;
const MFA = "urn:tessera:acr:mfa";
const meta = { ip: "127.0.0.1", userAgent: "vitest" };

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app);
});
afterAll(() => t.close());

async function cookieFor(userId: string, amr: string[]) {
  const { token } = await signIn(t.app.ctx, t.app.ctx.db, { userId, amr, meta });
  return `${sessionCookieName(t.app.ctx.config)}=${token}`;
}

async function withFactor(email: string) {
  const user = await createUser(t.app, { email });
  const { secret } = await beginTotpEnrolment(t.app.ctx, meta, user);
  await confirmTotpEnrolment(t.app.ctx, meta, { userId: user.id, code: currentCode(secret, t.clock.now()) });
  return user;
}

function authorize(cookie: string, extra: Record<string, string>) {
  return t.app.inject({
    method: "GET",
    url: `/authorize?${authorizeQuery(client, extra, pkce().challenge)}`,
    headers: { cookie },
  });
}

describe("acr_values and amr", () => {
  it("a password-only session of a user with a factor is sent to a fresh sign-in that keeps acr_values", async () => {
    const user = await withFactor("acr-fresh@example.com");
    const res = await authorize(await cookieFor(user.id, ["pwd"]), { acr_values: MFA });
    expect(res.statusCode).toBe(302);
    const login = new URL(res.headers.location as string, "http://x");
    expect(login.pathname).toBe("/login");
    expect(login.searchParams.get("prompt")).toBe("login");
    const returnTo = new URL(login.searchParams.get("return_to") ?? "", "http://x");
    expect(returnTo.pathname).toBe("/authorize");
    expect(returnTo.searchParams.get("acr_values")).toBe(MFA);
  });

  it("a session signed in with a second factor gets a code, and the ID token says amr pwd+otp and the mfa acr", async () => {
    const user = await withFactor("acr-ok@example.com");
    const cookie = await cookieFor(user.id, ["pwd", "otp"]);
    const { code, verifier } = await getCode(t.app, client, cookie, { acr_values: MFA });
    const tokens = (await redeem(t.app, client, code, verifier)).json();
    const claims = decodeJwt(tokens.id_token);
    expect(claims.amr).toEqual(["pwd", "otp"]);
    expect(claims.acr).toBe(MFA);
  });

  it("a password sign-in says amr pwd and the single-factor acr when nothing is demanded", async () => {
    const user = await createUser(t.app, { email: "acr-pwd@example.com" });
    const cookie = await cookieFor(user.id, ["pwd"]);
    const { code, verifier } = await getCode(t.app, client, cookie);
    const claims = decodeJwt((await redeem(t.app, client, code, verifier)).json().id_token);
    expect(claims.amr).toEqual(["pwd"]);
    expect(claims.acr).toBe("urn:tessera:acr:sfa");
    // Listing the single-factor value too means a password sign-in is acceptable.
    const both = await getCode(t.app, client, cookie, { acr_values: `${MFA} urn:tessera:acr:sfa` });
    expect(both.code).toBeTruthy();
  });

  it("tells the client access_denied when the user has no second factor, and interaction_required for prompt=none", async () => {
    const user = await createUser(t.app, { email: "acr-none@example.com" });
    const cookie = await cookieFor(user.id, ["pwd"]);
    const denied = await authorize(cookie, { acr_values: MFA });
    expect(denied.statusCode).toBe(302);
    expect(denied.headers.location).toMatch(/^https:\/\/shop\.example\/cb\?/);
    expect(Object.fromEntries(locationParams(denied))).toMatchObject({ error: "access_denied", state: "st-123" });

    const silent = await authorize(cookie, { acr_values: MFA, prompt: "none" });
    expect(Object.fromEntries(locationParams(silent))).toMatchObject({ error: "interaction_required" });
  });

  it("discovery lists the acr values and the acr claim", async () => {
    const res = await t.app.inject({ method: "GET", url: "/.well-known/openid-configuration" });
    expect(res.json().acr_values_supported).toEqual(["urn:tessera:acr:sfa", MFA]);
    expect(res.json().claims_supported).toContain("acr");
  });

  it("end to end: acr_values → fresh sign-in with password and code → a code whose ID token says pwd+otp", async () => {
    const email = "acr-e2e@example.com";
    const user = await createUser(t.app, { email, password: PASSWORD });
    const { secret } = await beginTotpEnrolment(t.app.ctx, meta, user);
    await confirmTotpEnrolment(t.app.ctx, meta, { userId: user.id, code: currentCode(secret, t.clock.now()) });
    const b = new Browser(t.app);
    const session = await cookieFor(user.id, ["pwd"]);
    b.cookies.set("tessera_session", session.split("=")[1] ?? "");

    const { verifier, challenge } = pkce();
    const first = await b.get(`/authorize?${authorizeQuery(client, { acr_values: MFA, max_age: "0" }, challenge)}`);
    expect(first.statusCode).toBe(302);
    const loginUrl = first.headers.location as string;
    expect(loginUrl).toMatch(/^\/login\?/);
    const afterPassword = await b.submit(loginUrl, { email, password: PASSWORD }, "/login");
    expect(afterPassword.statusCode).toBe(303);
    const otpUrl = afterPassword.headers.location as string;
    expect(otpUrl).toMatch(/^\/login\/otp\?return_to=%2Fauthorize%3F/);
    t.clock.advance(30);
    const afterCode = await b.submit(otpUrl, { code: currentCode(secret, t.clock.now()) }, "/login/otp");
    expect(afterCode.statusCode).toBe(303);
    const back = afterCode.headers.location as string;
    expect(back).toMatch(/^\/authorize\?/);
    expect(new URL(back, "http://x").searchParams.get("max_age")).toBeNull();
    const done = await b.get(back);
    expect(done.statusCode).toBe(302);
    const code = locationParams(done).get("code") ?? "";
    const claims = decodeJwt((await redeem(t.app, client, code, verifier)).json().id_token);
    expect(claims).toMatchObject({ sub: user.id, amr: ["pwd", "otp"], acr: MFA });
  });
});
