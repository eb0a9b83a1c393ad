import { sessions, userIdentities, users } from "@tessera/db";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProvider } from "../../src/libraries/federation/providers.ts";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, formFor } from "../accounts/helpers.ts";
import { followToIssuer, type OAuthStub, type SteamStub, startOAuthStub, startSteamStub } from "./upstreams.ts";

/** OAuth 2.0 presets against GitHub-/Discord-shaped stubs, Steam against an OpenID 2.0 stub, and the code step. */
let t: AccountsTestApp;
let github: OAuthStub;
let discord: OAuthStub;
let twitch: OAuthStub;
let steam: SteamStub;
const ISSUER = "http://localhost:3000";
const actor = { actorId: null, meta: { ip: undefined, userAgent: "vitest" } };
const meta = { ip: "127.0.0.1", userAgent: "vitest" };

beforeAll(async () => {
  t = await buildAccountsApp({ ISSUER });
  [github, discord, twitch, steam] = await Promise.all([
    startOAuthStub(),
    startOAuthStub(),
    startOAuthStub(),
    startSteamStub(),
  ]);
  const stub = (s: OAuthStub, user: string) => ({
    clientId: s.clientId,
    clientSecret: s.clientSecret,
    endpoints: { authorization: `${s.base}/authorize`, token: `${s.base}/token`, user: `${s.base}${user}` },
  });
  const gh = stub(github, "/user");
  await createProvider(
    t.app.ctx,
    {
      slug: "github",
      type: "oauth2",
      preset: "github",
      ...gh,
      endpoints: { ...gh.endpoints, emails: `${github.base}/user/emails` },
    },
    actor,
  );
  await createProvider(
    t.app.ctx,
    { slug: "discord", type: "oauth2", preset: "discord", ...stub(discord, "/users/@me") },
    actor,
  );
  await createProvider(
    t.app.ctx,
    { slug: "twitch", type: "oauth2", preset: "twitch", ...stub(twitch, "/helix/users") },
    actor,
  );
  await createProvider(t.app.ctx, { slug: "steam", type: "steam", endpoints: { login: steam.endpoint } }, actor);
});
afterAll(async () => {
  await Promise.all([github.close(), discord.close(), twitch.close(), steam.close()]);
  await t.close();
});

async function roundTrip(browser: Browser, slug: string) {
  const start = await browser.get(`/federation/${slug}/start`);
  expect(start.statusCode).toBe(303);
  return followToIssuer(start.headers.location as string, ISSUER);
}
const userByEmail = async (email: string) =>
  (await t.app.ctx.db.select().from(users).where(sql`lower(${users.email}) = ${email}`))[0];
const identityCount = async () => (await t.app.ctx.db.select().from(userIdentities)).length;

describe("OAuth 2.0 presets", () => {
  it("GitHub: code with PKCE at the token endpoint, the user endpoint's id as subject, the primary address", async () => {
    github.user = { id: 583231, login: "octocat", name: "The Octocat" };
    github.emails = [
      { email: "octo@old.test", primary: false, verified: true },
      { email: "octocat@github.test", primary: true, verified: true },
    ];
    const browser = new Browser(t.app);
    const start = await browser.get("/federation/github/start");
    const authorize = new URL(start.headers.location as string);
    expect(authorize.origin + authorize.pathname).toBe(`${github.base}/authorize`);
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorize.searchParams.get("scope")).toBe("read:user user:email");
    const done = await browser.get(await followToIssuer(start.headers.location as string, ISSUER));
    expect(done.statusCode).toBe(303);
    const user = await userByEmail("octocat@github.test");
    expect(user?.displayName).toBe("The Octocat");
    // GitHub is not marked trusted for email here: its "verified" is not believed.
    expect(user?.emailVerifiedAt).toBeNull();
    const [identity] = await t.app.ctx.db.select().from(userIdentities).where(eq(userIdentities.userId, user!.id));
    expect(identity?.subject).toBe("583231");
  });

  it("Discord: /users/@me; a replayed callback is refused and the stub's token endpoint is not asked twice", async () => {
    discord.user = { id: "80351110224678912", username: "nelly", email: "nelly@discord.test", verified: true };
    const browser = new Browser(t.app);
    const callback = await roundTrip(browser, "discord");
    const cookie = browser.cookies.get("tessera_fed") ?? "";
    expect((await browser.get(callback)).statusCode).toBe(303);
    expect(await userByEmail("nelly@discord.test")).toBeDefined();
    const before = discord.tokenRequests;
    const replay = new Browser(t.app);
    replay.cookies.set("tessera_fed", cookie);
    const refused = await replay.get(callback);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("FEDERATION_STATE_INVALID");
    expect(discord.tokenRequests).toBe(before);
  });

  it("Twitch: helix/users with the Client-Id header, the first of `data` as the user; its email not trusted", async () => {
    twitch.user = {
      id: "141981764",
      login: "twitchdev",
      display_name: "TwitchDev",
      email: "twitchdev@twitch.test",
      created_at: "2017-04-13T05:00:00Z",
    };
    const browser = new Browser(t.app);
    const start = await browser.get("/federation/twitch/start");
    const authorize = new URL(start.headers.location as string);
    expect(authorize.origin + authorize.pathname).toBe(`${twitch.base}/authorize`);
    expect(authorize.searchParams.get("scope")).toBe("user:read:email");
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    const done = await browser.get(await followToIssuer(start.headers.location as string, ISSUER));
    expect(done.statusCode).toBe(303);
    const user = await userByEmail("twitchdev@twitch.test");
    expect(user?.displayName).toBe("TwitchDev");
    expect(user?.emailVerifiedAt).toBeNull();
    const [identity] = await t.app.ctx.db.select().from(userIdentities).where(eq(userIdentities.userId, user!.id));
    expect(identity).toMatchObject({ subject: "141981764", email: "twitchdev@twitch.test", displayName: "TwitchDev" });
    const signedIn = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user!.id));
    expect(signedIn.map((s) => s.amr)).toEqual([["fed", "twitch"]]);
  });

  it("the user cancelling at the provider (error=access_denied) is a clear page, nothing created", async () => {
    const browser = new Browser(t.app);
    const start = await browser.get("/federation/discord/start");
    const state = new URL(start.headers.location as string).searchParams.get("state") ?? "";
    const back = await browser.get(`/federation/discord/callback?error=access_denied&state=${state}`);
    expect(back.statusCode).toBe(400);
    expect(back.body).toContain("FEDERATION_DENIED");
  });

  it("an account with a second factor still gets the code step after an upstream sign-in (amr fed, slug, otp)", async () => {
    discord.user = { id: "111222333444555666", username: "mfa", email: "mfa@discord.test", verified: true };
    const first = new Browser(t.app);
    expect((await first.get(await roundTrip(first, "discord"))).statusCode).toBe(303);
    const user = await userByEmail("mfa@discord.test");
    // Two-step verification needs a confirmed address (Discord is not trusted for email here): confirm it directly.
    await t.app.ctx.db.update(users).set({ emailVerifiedAt: t.clock.now() }).where(eq(users.id, user!.id));
    const { secret } = await beginTotpEnrolment(t.app.ctx, meta, { ...user!, emailVerifiedAt: t.clock.now() });
    await confirmTotpEnrolment(t.app.ctx, meta, { userId: user!.id, code: currentCode(secret, t.clock.now()) });

    const browser = new Browser(t.app);
    const back = await browser.get(await roundTrip(browser, "discord"));
    expect(back.statusCode).toBe(303);
    expect(back.headers.location).toBe("/login/otp");
    expect(back.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    t.clock.advance(30);
    const page = await browser.get("/login/otp");
    const done = await browser.post("/login/otp", {
      ...formFor(page.body, "/login/otp"),
      code: currentCode(secret, t.clock.now()),
    });
    expect(done.statusCode).toBe(303);
    const sessions = await browser.json("GET", "/api/v1/me/sessions");
    const current = (sessions.json() as { sessions: Array<{ current: boolean; amr: string[] }> }).sessions.find(
      (s) => s.current,
    );
    expect(current?.amr).toEqual(["fed", "discord", "otp"]);
  });
});

describe("Steam (OpenID 2.0)", () => {
  it("signs in with the SteamID64 from claimed_id after check_authentication", async () => {
    steam.steamId = "76561197960287930";
    const browser = new Browser(t.app);
    const start = await browser.get("/federation/steam/start");
    const url = new URL(start.headers.location as string);
    expect(url.searchParams.get("openid.realm")).toBe(`${ISSUER}/`);
    expect(url.searchParams.get("openid.return_to")).toMatch(
      /^http:\/\/localhost:3000\/federation\/steam\/callback\?state=/,
    );
    const checks = steam.checks;
    const done = await browser.get(await followToIssuer(start.headers.location as string, ISSUER));
    expect(done.statusCode).toBe(303);
    expect(steam.checks).toBe(checks + 1);
    const [identity] = await t.app.ctx.db
      .select()
      .from(userIdentities)
      .where(eq(userIdentities.subject, "76561197960287930"));
    expect(identity).toBeDefined();
    const user = (await t.app.ctx.db.select().from(users).where(eq(users.id, identity!.userId)))[0];
    expect(user?.email).toBe("steam.76561197960287930@federated.invalid");
  });

  it("an assertion made for another return URL is refused before Steam is asked, nothing linked", async () => {
    steam.steamId = "76561197960287931";
    const browser = new Browser(t.app);
    const start = await browser.get("/federation/steam/start");
    const state = new URL(
      new URL(start.headers.location as string).searchParams.get("openid.return_to") ?? "",
    ).searchParams.get("state");
    // A valid Steam assertion, but for another site's return URL, replayed to our callback with our flow's state.
    steam.returnToOverride = `http://evil.test/steam/callback?state=${state}`;
    const evil = new URL(
      await followToIssuer(start.headers.location as string, "http://evil.test").finally(() => {
        steam.returnToOverride = undefined;
      }),
      "http://evil.test",
    );
    const count = await identityCount();
    const checks = steam.checks;
    const refused = await browser.get(`/federation/steam/callback${evil.search}`);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("FEDERATION_UPSTREAM_INVALID");
    expect(steam.checks).toBe(checks);
    expect(await identityCount()).toBe(count);
  });

  it("a forged assertion (signature Steam does not confirm) is refused, nothing linked", async () => {
    steam.steamId = "76561197960287932";
    const browser = new Browser(t.app);
    const callback = new URL(await roundTrip(browser, "steam"), ISSUER);
    callback.searchParams.set("openid.claimed_id", "https://steamcommunity.com/openid/id/76561197960287999");
    callback.searchParams.set("openid.identity", "https://steamcommunity.com/openid/id/76561197960287999");
    const count = await identityCount();
    const refused = await browser.get(callback.pathname + callback.search);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("FEDERATION_UPSTREAM_INVALID");
    expect(await identityCount()).toBe(count);
  });
});
