import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApp } from "../helpers.ts";
import { basic, buildOAuthApp, createUser, FORM, form, registerClient, type TestClient } from "../oauth/helpers.ts";
import { DEVICE_GRANT, discover, signedInBrowser } from "./helpers.ts";

/** RFC 8628 with a client library Tessera does not use itself (oauth4webapi), and a signed-in browser approving. */
describe("device authorization grant", () => {
  let t: TestApp;
  let console_: TestClient;
  let other: TestClient;

  beforeAll(async () => {
    t = await buildOAuthApp({ THROTTLE_IP_MAX_FAILURES: "1000" });
    console_ = await registerClient(t.app, { name: "Arcade Console", grantTypes: [DEVICE_GRANT, "refresh_token"] });
    other = await registerClient(t.app, { name: "Other", grantTypes: [DEVICE_GRANT] });
  });
  afterAll(() => t.close());

  const start = async (client: TestClient, scope = "openid profile") => {
    const res = await t.app.inject({
      method: "POST",
      url: "/device_authorization",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ scope }),
    });
    expect(res.statusCode).toBe(200);
    return res.json() as {
      device_code: string;
      user_code: string;
      verification_uri_complete: string;
      interval: number;
    };
  };
  const poll = (client: TestClient, deviceCode: string) =>
    t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ grant_type: DEVICE_GRANT, device_code: deviceCode }),
    });

  it("is advertised in discovery", async () => {
    const { as } = await discover(t.app);
    expect(as.device_authorization_endpoint).toBe(`${t.app.ctx.config.issuer}/device_authorization`);
    expect(as.grant_types_supported).toContain(DEVICE_GRANT);
  });

  it("full flow: oauth4webapi polls while the signed-in browser approves", async () => {
    const user = await createUser(t.app, { email: "player@example.com" });
    const { as, options } = await discover(t.app);
    const client: oauth.Client = { client_id: console_.clientId };
    const auth = oauth.ClientSecretBasic(console_.secret);

    const started = await oauth.processDeviceAuthorizationResponse(
      as,
      client,
      await oauth.deviceAuthorizationRequest(as, client, auth, { scope: "openid profile" }, options),
    );
    expect(started.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(started.verification_uri).toBe(`${t.app.ctx.config.issuer}/device`);
    expect(started.interval).toBe(5);

    const pollOnce = async () =>
      oauth.processDeviceCodeResponse(
        as,
        client,
        await oauth.deviceCodeGrantRequest(as, client, auth, started.device_code, options),
      );
    await expect(pollOnce()).rejects.toMatchObject({ error: "authorization_pending", status: 400 });

    // The browser arrives with verification_uri_complete: the code is prefilled, then the app and scopes are shown.
    const browser = await signedInBrowser(t.app, user);
    const complete = new URL(started.verification_uri_complete!);
    const page = await browser.get(complete.pathname + complete.search);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(`value="${started.user_code}"`);
    const confirm = await browser.submit(complete.pathname + complete.search, { user_code: started.user_code });
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain("Arcade Console wants to sign in on your device");
    expect(confirm.body).toContain("<li>profile</li>");
    const decided = await browser.post("/device/decision", {
      ...Object.fromEntries(
        [...confirm.body.matchAll(/name="(_csrf|user_code)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]),
      ),
      decision: "approve",
    });
    expect(decided.statusCode).toBe(200);
    expect(decided.body).toContain("Device connected");

    t.clock.advance(5);
    const tokens = await pollOnce();
    expect(tokens.token_type).toBe("bearer");
    expect(tokens.refresh_token).toMatch(/^tsr_/);
    const claims = oauth.getValidatedIdTokenClaims(tokens)!;
    expect(claims.sub).toBe(user.id);
    expect(claims.aud).toBe(console_.clientId);

    // Single use: the next poll is refused.
    t.clock.advance(5);
    await expect(pollOnce()).rejects.toMatchObject({ error: "invalid_grant" });
    // The refresh token works (the device's own session).
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, options),
    );
    expect(refreshed.access_token).toBeTruthy();
  });

  it("polling faster than the interval gets slow_down, and the interval grows by 5 s", async () => {
    const started = await start(console_);
    expect((await poll(console_, started.device_code)).json()).toMatchObject({ error: "authorization_pending" });
    const early = await poll(console_, started.device_code);
    expect(early.statusCode).toBe(400);
    expect(early.json()).toMatchObject({ error: "slow_down" });
    t.clock.advance(6); // enough for the old interval (5), not for the new one (10)
    expect((await poll(console_, started.device_code)).json()).toMatchObject({ error: "slow_down" });
    t.clock.advance(15);
    expect((await poll(console_, started.device_code)).json()).toMatchObject({ error: "authorization_pending" });
  });

  it("another client polling with the device code gets invalid_grant, even after approval", async () => {
    const user = await createUser(t.app);
    const started = await start(console_);
    const browser = await signedInBrowser(t.app, user);
    const confirm = await browser.submit("/device", { user_code: started.user_code });
    expect(confirm.statusCode).toBe(200);
    await browser.submit("/device", { user_code: started.user_code }); // renders confirm again; harmless
    const decided = await browser.post("/device/decision", {
      _csrf: confirm.body.match(/name="_csrf" value="([^"]*)"/)![1]!,
      user_code: started.user_code,
      decision: "approve",
    });
    expect(decided.statusCode).toBe(200);
    const stolen = await poll(other, started.device_code);
    expect(stolen.statusCode).toBe(400);
    expect(stolen.json()).toMatchObject({ error: "invalid_grant" });
    // The rightful client still gets its tokens.
    const mine = await poll(console_, started.device_code);
    expect(mine.statusCode).toBe(200);
    expect(mine.json()).toMatchObject({ token_type: "Bearer" });
  });

  it("parallel polls after approval: exactly one gets tokens", async () => {
    const user = await createUser(t.app);
    const started = await start(console_);
    const browser = await signedInBrowser(t.app, user);
    const confirm = await browser.submit("/device", { user_code: started.user_code });
    await browser.post("/device/decision", {
      _csrf: confirm.body.match(/name="_csrf" value="([^"]*)"/)![1]!,
      user_code: started.user_code,
      decision: "approve",
    });
    const results = await Promise.all(Array.from({ length: 5 }, () => poll(console_, started.device_code)));
    const ok = results.filter((r) => r.statusCode === 200);
    expect(ok).toHaveLength(1);
    for (const r of results.filter((x) => x.statusCode !== 200)) {
      expect(r.statusCode).toBe(400);
      expect(["slow_down", "invalid_grant"]).toContain(r.json().error);
    }
  });

  it("deny → access_denied", async () => {
    const user = await createUser(t.app);
    const started = await start(console_);
    const browser = await signedInBrowser(t.app, user);
    const confirm = await browser.submit("/device", { user_code: started.user_code.toLowerCase() });
    const decided = await browser.post("/device/decision", {
      _csrf: confirm.body.match(/name="_csrf" value="([^"]*)"/)![1]!,
      user_code: started.user_code,
      decision: "deny",
    });
    expect(decided.body).toContain("Request denied");
    const res = await poll(console_, started.device_code);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: "access_denied" });
    // The user code is single use: entering it again is refused.
    const again = await browser.submit("/device", { user_code: started.user_code });
    expect(again.statusCode).toBe(400);
    expect(again.body).toContain("That code is not valid or has expired");
  });

  it("expiry → expired_token, and the user code stops working", async () => {
    const user = await createUser(t.app);
    const started = await start(console_);
    t.clock.advance(t.app.ctx.config.grants.deviceCodeTtlSeconds);
    const res = await poll(console_, started.device_code);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: "expired_token" });
    const browser = await signedInBrowser(t.app, user);
    const entered = await browser.submit("/device", { user_code: started.user_code });
    expect(entered.statusCode).toBe(400);
  });

  it("a client not registered for the device grant is refused", async () => {
    const web = await registerClient(t.app);
    const res = await t.app.inject({
      method: "POST",
      url: "/device_authorization",
      headers: { ...FORM, authorization: basic(web.clientId, web.secret) },
      payload: form({ scope: "openid" }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: "unauthorized_client" });
  });

  it("the page sends a signed-out visitor to sign in and back with the code", async () => {
    const res = await t.app.inject({ method: "GET", url: "/device?user_code=BCDF-GHJK" });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe(`/login?return_to=${encodeURIComponent("/device?user_code=BCDF-GHJK")}`);
  });
});

describe("user-code guessing", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildOAuthApp({
      THROTTLE_ACCOUNT_FREE_FAILURES: "3",
      THROTTLE_ACCOUNT_DELAY_BASE_SECONDS: "30",
      THROTTLE_IP_MAX_FAILURES: "1000",
    });
  });
  afterAll(() => t.close());

  it("wrong codes are throttled: after a few, even the right code waits", async () => {
    const client = await registerClient(t.app, { grantTypes: [DEVICE_GRANT] });
    const started = (
      await t.app.inject({
        method: "POST",
        url: "/device_authorization",
        headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
        payload: form({ scope: "openid" }),
      })
    ).json() as { user_code: string };
    const user = await createUser(t.app);
    const browser = await signedInBrowser(t.app, user);
    const statuses: number[] = [];
    for (const guess of ["BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "FFFF-FFFF", "GGGG-GGGG"]) {
      statuses.push((await browser.submit("/device", { user_code: guess })).statusCode);
    }
    expect(statuses).toEqual([400, 400, 400, 400, 429]);
    const right = await browser.submit("/device", { user_code: started.user_code });
    expect(right.statusCode).toBe(429);
    expect(right.headers["retry-after"]).toBeDefined();
    t.clock.advance(31);
    expect((await browser.submit("/device", { user_code: started.user_code })).statusCode).toBe(200);
  });
});

describe("user-code entry rate limit per IP", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildOAuthApp({ RATE_LIMIT_DEVICE: "2/600", THROTTLE_ACCOUNT_FREE_FAILURES: "100" });
  });
  afterAll(() => t.close());

  it("RATE_LIMIT_DEVICE bounds /device posts per IP, whatever the account", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const browser = await signedInBrowser(t.app, await createUser(t.app)); // a fresh account each time
      statuses.push((await browser.submit("/device", { user_code: "BBBB-BBBB" })).statusCode);
    }
    expect(statuses).toEqual([400, 400, 429]);
  });
});
