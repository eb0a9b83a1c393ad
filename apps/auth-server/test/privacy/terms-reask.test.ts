import { authorizationCodes, termsAcceptances } from "@tessera/db";
import { asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UserRow } from "../../src/libraries/sessions.ts";
import { Browser, formFor, PASSWORD } from "../accounts/helpers.ts";
import type { TestApp } from "../helpers.ts";
import {
  authorizeQuery,
  basic,
  buildOAuthApp,
  createUser,
  FORM,
  form,
  locationParams,
  REDIRECT,
  registerClient,
  type TestClient,
} from "../oauth/helpers.ts";

/**
 * Terms re-ask (#16): when TERMS_VERSION/PRIVACY_VERSION is newer than the user's last acceptance, the next /authorize
 * (after any sign-in, or silently with a session) shows the interstitial before the app gets a code; accepting records
 * the versions and continues, declining issues no code; prompt=none answers interaction_required.
 */
let t: TestApp;
let shop: TestClient;

beforeAll(async () => {
  t = await buildOAuthApp({
    TERMS_VERSION: "2026-12",
    TERMS_URL: "https://tessera.example/terms",
    PRIVACY_VERSION: "p8",
    PRIVACY_URL: "https://tessera.example/privacy",
    THROTTLE_IP_MAX_FAILURES: "100000",
    ACCOUNT_RESPONSE_FLOOR_MS: "0",
  });
  shop = await registerClient(t.app, { name: "Own Shop", firstParty: true });
});
afterAll(() => t.close());

/** A user who accepted the previous versions at registration. */
async function userWithOldAcceptance(): Promise<UserRow> {
  const user = await createUser(t.app, { password: PASSWORD });
  await t.app.ctx.db.insert(termsAcceptances).values({
    userId: user.id,
    termsVersion: "2026-11",
    privacyVersion: "p8",
    context: "register",
    acceptedAt: new Date(t.clock.now().getTime() - 86400_000),
  });
  return user;
}

async function signedIn(user: UserRow): Promise<Browser> {
  const b = new Browser(t.app);
  const res = await b.json("POST", "/api/v1/login", { email: user.email, password: PASSWORD });
  expect(res.statusCode).toBe(200);
  return b;
}

const acceptances = (userId: string) =>
  t.app.ctx.db
    .select()
    .from(termsAcceptances)
    .where(eq(termsAcceptances.userId, userId))
    .orderBy(asc(termsAcceptances.acceptedAt));
const codes = (userId: string) =>
  t.app.ctx.db.select().from(authorizationCodes).where(eq(authorizationCodes.userId, userId));

describe("terms re-ask at /authorize", () => {
  it("silent sign-in with a session shows the interstitial; accepting records the versions and issues the code", async () => {
    const user = await userWithOldAcceptance();
    const b = await signedIn(user);
    const authorizeUrl = `/authorize?${authorizeQuery(shop)}`;
    const page = await b.get(authorizeUrl);
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["cache-control"]).toBe("no-store");
    expect(page.body).toContain("Updated terms");
    expect(page.body).toContain('href="https://tessera.example/terms"');
    expect(page.body).toContain("(version 2026-12)");
    expect(page.body).toContain('href="https://tessera.example/privacy"');
    expect(await codes(user.id)).toEqual([]);

    const accepted = await b.post("/authorize/terms", {
      ...formFor(page.body, "/authorize/terms"),
      decision: "accept",
    });
    expect(accepted.statusCode).toBe(303);
    expect(accepted.headers.location).toMatch(new RegExp(`^${REDIRECT}\\?`));
    const params = locationParams(accepted);
    expect(params.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params.get("state")).toBe("st-123");
    const rows = await acceptances(user.id);
    expect(rows.map((r) => [r.termsVersion, r.privacyVersion, r.context])).toEqual([
      ["2026-11", "p8", "register"],
      ["2026-12", "p8", "sign_in"],
    ]);
    expect(rows[1]!.acceptedAt).toEqual(t.clock.now());

    // Accepted: the next authorization is silent again.
    const again = await b.get(authorizeUrl);
    expect(again.statusCode).toBe(302);
    expect(locationParams(again).get("code")).toBeTruthy();
  });

  it("prompt=none answers interaction_required instead of showing the page", async () => {
    const user = await userWithOldAcceptance();
    const b = await signedIn(user);
    const res = await b.get(`/authorize?${authorizeQuery(shop, { prompt: "none" })}`);
    expect(res.statusCode).toBe(302);
    const params = locationParams(res);
    expect(Object.fromEntries(params)).toEqual({
      error: "interaction_required",
      error_description: "The user must accept the updated terms first.",
      state: "st-123",
      iss: t.app.ctx.config.issuer,
    });
    expect(await codes(user.id)).toEqual([]);
  });

  it("declining issues no code, records nothing and says the user is not signed in to the app", async () => {
    const user = await userWithOldAcceptance();
    const b = await signedIn(user);
    const page = await b.get(`/authorize?${authorizeQuery(shop)}`);
    const declined = await b.post("/authorize/terms", {
      ...formFor(page.body, "/authorize/terms"),
      decision: "decline",
    });
    expect(declined.statusCode).toBe(200);
    expect(declined.body).toContain("You are not signed in to Own Shop");
    expect(declined.body).toContain("You declined the updated terms");
    const back = declined.body.match(/<a class="button" href="([^"]+)">Return to Own Shop<\/a>/)?.[1];
    const backParams = new URL(back!.replace(/&amp;/g, "&")).searchParams;
    expect(backParams.get("error")).toBe("access_denied");
    expect(backParams.get("state")).toBe("st-123");
    expect(await codes(user.id)).toEqual([]);
    expect(await acceptances(user.id)).toHaveLength(1);
    // Still asked next time.
    expect((await b.get(`/authorize?${authorizeQuery(shop)}`)).body).toContain("Updated terms");
  });

  it("the form refuses a post without the CSRF token", async () => {
    const user = await userWithOldAcceptance();
    const b = await signedIn(user);
    const page = await b.get(`/authorize?${authorizeQuery(shop)}`);
    const { _csrf, ...withoutCsrf } = formFor(page.body, "/authorize/terms");
    const res = await b.post("/authorize/terms", { ...withoutCsrf, decision: "accept" });
    expect(res.statusCode).toBe(403);
    expect(await acceptances(user.id)).toHaveLength(1);
  });

  it("after a password sign-in on the hosted page, the interstitial comes before the app", async () => {
    const user = await userWithOldAcceptance();
    const b = new Browser(t.app);
    const start = await b.get(`/authorize?${authorizeQuery(shop)}`);
    expect(start.statusCode).toBe(302);
    const login = start.headers.location as string;
    expect(login).toMatch(/^\/login\?/);
    const signIn = await b.submit(login, { email: user.email, password: PASSWORD }, "/login");
    expect(signIn.statusCode).toBe(303);
    const back = await b.get(signIn.headers.location as string);
    expect(back.statusCode).toBe(200);
    expect(back.body).toContain("Updated terms");
    const accepted = await b.post("/authorize/terms", {
      ...formFor(back.body, "/authorize/terms"),
      decision: "accept",
    });
    expect(locationParams(accepted).get("code")).toBeTruthy();
  });

  it("a user who accepted the current versions, and a user never asked (no acceptance at all), are told apart", async () => {
    const current = await createUser(t.app, { password: PASSWORD });
    await t.app.ctx.db.insert(termsAcceptances).values({
      userId: current.id,
      termsVersion: "2026-12",
      privacyVersion: "p8",
      context: "register",
      acceptedAt: t.clock.now(),
    });
    const silent = await (await signedIn(current)).get(`/authorize?${authorizeQuery(shop)}`);
    expect(silent.statusCode).toBe(302);
    expect(locationParams(silent).get("code")).toBeTruthy();

    // An account made by an upstream sign-in or an admin never accepted anything: asked too.
    const never = await createUser(t.app, { password: PASSWORD });
    expect((await (await signedIn(never)).get(`/authorize?${authorizeQuery(shop)}`)).body).toContain("Updated terms");
  });
});

describe("terms re-ask in the device flow", () => {
  const DEVICE = "urn:ietf:params:oauth:grant-type:device_code";

  it("approving a device asks for the new versions (the box on the confirmation page); without it nothing is approved", async () => {
    const tv = await registerClient(t.app, { name: "Living Room TV", grantTypes: [DEVICE], redirectUris: [] });
    const started = await t.app.inject({
      method: "POST",
      url: "/device_authorization",
      headers: { ...FORM, authorization: basic(tv.clientId, tv.secret) },
      payload: form({ scope: "openid" }),
    });
    expect(started.statusCode).toBe(200);
    const { user_code: userCode, device_code: deviceCode } = started.json() as Record<string, string>;
    const poll = () =>
      t.app.inject({
        method: "POST",
        url: "/token",
        headers: { ...FORM, authorization: basic(tv.clientId, tv.secret) },
        payload: form({ grant_type: DEVICE, device_code: deviceCode as string }),
      });

    const user = await userWithOldAcceptance();
    const b = await signedIn(user);
    const confirm = await b.submit("/device", { user_code: userCode as string });
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('name="acceptTerms"');
    expect(confirm.body).toContain("https://tessera.example/terms");
    const fields = formFor(confirm.body, "/device/decision");

    const refused = await b.post("/device/decision", { ...fields, decision: "approve" });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('id="acceptTerms-error"');
    expect(await acceptances(user.id)).toHaveLength(1);
    t.clock.advance(10);
    expect((await poll()).json()).toMatchObject({ error: "authorization_pending" });

    const approved = await b.post("/device/decision", { ...fields, decision: "approve", acceptTerms: "on" });
    expect(approved.statusCode).toBe(200);
    const rows = await acceptances(user.id);
    expect(rows.map((r) => [r.termsVersion, r.privacyVersion, r.context])).toEqual([
      ["2026-11", "p8", "register"],
      ["2026-12", "p8", "sign_in"],
    ]);
    t.clock.advance(10);
    const tokens = await poll();
    expect(tokens.statusCode).toBe(200);
    expect(tokens.json()).toHaveProperty("access_token");
  });

  it("a user who accepted the current versions sees no box", async () => {
    const tv = await registerClient(t.app, { name: "Console", grantTypes: [DEVICE], redirectUris: [] });
    const started = await t.app.inject({
      method: "POST",
      url: "/device_authorization",
      headers: { ...FORM, authorization: basic(tv.clientId, tv.secret) },
      payload: form({ scope: "openid" }),
    });
    const user = await createUser(t.app, { password: PASSWORD });
    await t.app.ctx.db.insert(termsAcceptances).values({
      userId: user.id,
      termsVersion: "2026-12",
      privacyVersion: "p8",
      context: "register",
      acceptedAt: t.clock.now(),
    });
    const b = await signedIn(user);
    const confirm = await b.submit("/device", {
      user_code: (started.json() as Record<string, string>).user_code as string,
    });
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).not.toContain('name="acceptTerms"');
    const done = await b.post("/device/decision", {
      ...formFor(confirm.body, "/device/decision"),
      decision: "approve",
    });
    expect(done.statusCode).toBe(200);
  });
});
