import { auditEvents, federationFlows, userIdentities, users } from "@tessera/db";
import { eq, sql } from "drizzle-orm";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProvider } from "../../src/libraries/federation/providers.ts";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { ACR_MULTI_FACTOR } from "../../src/libraries/oauth/acr.ts";
import {
  type AccountsTestApp,
  Browser,
  buildAccountsApp,
  createVerifiedAccount,
  decode,
  formFor,
  PASSWORD,
} from "../accounts/helpers.ts";
import { authorizeQuery, locationParams, pkce, redeem, registerClient } from "../oauth/helpers.ts";
import { followToIssuer, type OidcUpstream, startOidcUpstream } from "./upstreams.ts";

/** Sign-in with a real OpenID Provider (node-oidc-provider on loopback): accounts, linking, and forged answers. */
let t: AccountsTestApp;
let upstream: OidcUpstream;
let trusted: OidcUpstream;
const ISSUER = "http://localhost:3000";
const actor = { actorId: null, meta: { ip: undefined, userAgent: "vitest" } };

beforeAll(async () => {
  t = await buildAccountsApp({ ISSUER });
  upstream = await startOidcUpstream(`${ISSUER}/federation/acme/callback`);
  trusted = await startOidcUpstream(`${ISSUER}/federation/corp/callback`);
  await createProvider(
    t.app.ctx,
    {
      slug: "acme",
      type: "oidc",
      issuer: upstream.issuer,
      clientId: upstream.clientId,
      clientSecret: upstream.clientSecret,
    },
    actor,
  );
  await createProvider(
    t.app.ctx,
    {
      slug: "corp",
      type: "oidc",
      issuer: trusted.issuer,
      clientId: trusted.clientId,
      clientSecret: trusted.clientSecret,
      trustedForEmail: true,
    },
    actor,
  );
});
afterAll(async () => {
  await upstream.close();
  await trusted.close();
  await t.close();
});

/** Starts at Tessera, goes round the upstream, and returns the callback path (not yet sent to Tessera). */
async function roundTrip(browser: Browser, slug: string, query = "") {
  const start = await browser.get(`/federation/${slug}/start${query}`);
  expect(start.statusCode).toBe(303);
  return followToIssuer(start.headers.location as string, ISSUER);
}

async function currentAmr(browser: Browser) {
  const sessions = await browser.json("GET", "/api/v1/me/sessions");
  expect(sessions.statusCode).toBe(200);
  const list = (sessions.json() as { sessions: Array<{ current: boolean; amr: string[] }> }).sessions;
  return list.find((s) => s.current)?.amr;
}

const identitiesOf = (userId: string) =>
  t.app.ctx.db.select().from(userIdentities).where(eq(userIdentities.userId, userId));
const userByEmail = async (email: string) =>
  (await t.app.ctx.db.select().from(users).where(sql`lower(${users.email}) = ${email}`))[0];

describe("OpenID Connect upstream", () => {
  it("a first sign-in creates an account, signs it in with amr fed+slug, and does not believe an untrusted email_verified", async () => {
    upstream.as("alice-sub", { email: "alice@upstream.test", email_verified: true, name: "Alice" });
    const browser = new Browser(t.app);
    const callback = await roundTrip(browser, "acme", "?return_to=%2Faccount");
    const done = await browser.get(callback);
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe("/account");
    expect(done.cookies.find((c) => c.name === "tessera_session")?.value).toBeTruthy();
    const user = await userByEmail("alice@upstream.test");
    expect(user?.emailVerifiedAt).toBeNull(); // acme is not trusted for email
    expect(user?.passwordHash).toBeNull();
    const linked = await identitiesOf(user!.id);
    expect(linked.map((i) => i.subject)).toEqual(["alice-sub"]);
    expect(await currentAmr(browser)).toEqual(["fed", "acme"]);

    // The same identity again signs the same account in: no second account.
    const again = new Browser(t.app);
    expect((await again.get(await roundTrip(again, "acme"))).statusCode).toBe(303);
    expect(
      (await t.app.ctx.db.select().from(users).where(sql`lower(${users.email}) = 'alice@upstream.test'`)).length,
    ).toBe(1);
  });

  it("a provider trusted for email marks the address verified", async () => {
    trusted.as("bob-sub", { email: "bob@corp.test", email_verified: true });
    const browser = new Browser(t.app);
    expect((await browser.get(await roundTrip(browser, "corp"))).statusCode).toBe(303);
    expect((await userByEmail("bob@corp.test"))?.emailVerifiedAt).toBeInstanceOf(Date);
  });

  it("an identity whose email has an account is never linked by email: the password comes first", async () => {
    const owner = await createVerifiedAccount(t, "carol@example.com");
    void owner;
    const carol = await userByEmail("carol@example.com");
    trusted.as("carol-sub", { email: "Carol@example.com", email_verified: true });
    const browser = new Browser(t.app);
    const back = await browser.get(await roundTrip(browser, "corp"));
    expect(back.statusCode).toBe(303);
    expect(back.headers.location).toBe("/federation/link");
    expect(back.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    expect(await identitiesOf(carol!.id)).toEqual([]);

    const page = await browser.get("/federation/link");
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("carol@example.com");
    const form = formFor(page.body, "/federation/link");
    const wrong = await browser.post("/federation/link", { ...form, password: "not the password at all" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("The email or password is incorrect.");
    expect(await identitiesOf(carol!.id)).toEqual([]);

    const right = await browser.post("/federation/link", { ...form, password: PASSWORD });
    expect(right.statusCode).toBe(303);
    expect(right.cookies.find((c) => c.name === "tessera_session")?.value).toBeTruthy();
    expect(await currentAmr(browser)).toEqual(["pwd", "fed", "corp"]);
    expect((await identitiesOf(carol!.id)).map((i) => i.subject)).toEqual(["carol-sub"]);
    // The pending link is spent: posting it again links nothing more and is refused.
    const replay = await browser.post("/federation/link", { ...form, password: PASSWORD });
    expect(replay.statusCode).toBe(400);
    expect(replay.body).toContain("FEDERATION_STATE_INVALID");
  });

  it("an app asking acr_values for MFA still gets the code step after an upstream sign-in of an account with two-step verification", async () => {
    // An account made by an acme sign-in, which then turned on an authenticator app (it needs a confirmed address).
    upstream.as("mfa-sub", { email: "mfa@upstream.test" });
    const first = new Browser(t.app);
    expect((await first.get(await roundTrip(first, "acme"))).statusCode).toBe(303);
    const user = (await userByEmail("mfa@upstream.test"))!;
    const meta = { ip: "127.0.0.1", userAgent: "vitest" };
    await t.app.ctx.db.update(users).set({ emailVerifiedAt: t.clock.now() }).where(eq(users.id, user.id));
    const { secret } = await beginTotpEnrolment(t.app.ctx, meta, { ...user, emailVerifiedAt: t.clock.now() });
    await confirmTotpEnrolment(t.app.ctx, meta, { userId: user.id, code: currentCode(secret, t.clock.now()) });

    // The app asks for a second factor; the user picks the upstream on the sign-in page it is sent to.
    const client = await registerClient(t.app);
    const { verifier, challenge } = pkce();
    const authorize = `/authorize?${authorizeQuery(client, { acr_values: ACR_MULTI_FACTOR }, challenge)}`;
    const browser = new Browser(t.app);
    const toLogin = await browser.get(authorize);
    expect(toLogin.statusCode).toBe(302);
    const login = await browser.get(toLogin.headers.location as string);
    const start = decode(/href="(\/federation\/acme\/start\?[^"]+)"/.exec(login.body)?.[1] ?? "");
    expect(start).toContain("return_to=");
    const started = await browser.get(start);
    const back = await browser.get(await followToIssuer(started.headers.location as string, ISSUER));
    expect(back.statusCode).toBe(303);
    expect(back.headers.location).toMatch(/^\/login\/otp\?/);
    expect(back.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    // Before the code the app gets nothing: /authorize sends the browser to sign in again.
    const early = await browser.get(authorize);
    expect(early.statusCode).toBe(302);
    expect(new URL(early.headers.location as string, ISSUER).pathname).toBe("/login");

    t.clock.advance(30);
    const page = await browser.get(back.headers.location as string);
    const done = await browser.post("/login/otp", {
      ...formFor(page.body, "/login/otp"),
      code: currentCode(secret, t.clock.now()),
    });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toMatch(/^\/authorize\?/);
    const granted = await browser.get(done.headers.location as string);
    expect(granted.statusCode).toBe(302);
    const code = locationParams(granted).get("code") ?? "";
    const tokens = await redeem(t.app, client, code, verifier);
    expect(tokens.statusCode).toBe(200);
    const claims = decodeJwt(tokens.json().id_token);
    expect(claims.acr).toBe(ACR_MULTI_FACTOR);
    expect(claims.amr).toEqual(["fed", "acme", "otp"]);
  });

  it("a replayed callback is refused with a clear page and signs nobody in", async () => {
    upstream.as("dave-sub", { email: "dave@upstream.test", email_verified: true });
    const browser = new Browser(t.app);
    const flowCookie = async () => {
      const start = await browser.get("/federation/acme/start");
      return { start, cookie: browser.cookies.get("tessera_fed") ?? "" };
    };
    const { start, cookie } = await flowCookie();
    const callback = await followToIssuer(start.headers.location as string, ISSUER);
    expect((await browser.get(callback)).statusCode).toBe(303);
    const attacker = new Browser(t.app);
    attacker.cookies.set("tessera_fed", cookie);
    const replayed = await attacker.get(callback);
    expect(replayed.statusCode).toBe(400);
    expect(replayed.headers["content-type"]).toContain("text/html");
    expect(replayed.body).toContain("FEDERATION_STATE_INVALID");
    expect(replayed.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    const audited = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.event, "user.federated_sign_in_failed"));
    expect(audited.map((a) => a.details)).toContainEqual({ provider: "acme", reason: "FEDERATION_STATE_INVALID" });
  });

  it("a callback with another state, or without the flow's cookie, is refused and nothing is created", async () => {
    upstream.as("erin-sub", { email: "erin@upstream.test" });
    const browser = new Browser(t.app);
    const callback = await roundTrip(browser, "acme");
    const tampered = new URL(callback, ISSUER);
    tampered.searchParams.set("state", "attacker-state");
    const refused = await browser.get(tampered.pathname + tampered.search);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("FEDERATION_STATE_INVALID");
    // The flow was spent by the refusal: the genuine callback cannot be used afterwards either.
    expect((await browser.get(callback)).statusCode).toBe(400);
    // A callback delivered to another browser (login CSRF: the attacker's own code in the victim's browser).
    const victim = new Browser(t.app);
    const planted = await victim.get(await roundTrip(new Browser(t.app), "acme"));
    expect(planted.statusCode).toBe(400);
    expect(planted.body).toContain("FEDERATION_STATE_INVALID");
    expect(planted.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    expect(await userByEmail("erin@upstream.test")).toBeUndefined();
  });

  it("an ID token whose nonce is not the flow's is refused (FEDERATION_UPSTREAM_INVALID) and nothing is created", async () => {
    upstream.as("frank-sub", { email: "frank@upstream.test" });
    const browser = new Browser(t.app);
    const callback = await roundTrip(browser, "acme");
    // The flow's nonce changed after the request went out: the upstream's ID token carries the old one.
    await t.app.ctx.db
      .update(federationFlows)
      .set({ data: sql`jsonb_set(${federationFlows.data}, '{nonce}', '"another-nonce"')` })
      .where(eq(federationFlows.purpose, "upstream"));
    const refused = await browser.get(callback);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("FEDERATION_UPSTREAM_INVALID");
    expect(await userByEmail("frank@upstream.test")).toBeUndefined();
  });

  it("a forged code (never issued upstream) is refused by the upstream's token endpoint and nothing is created", async () => {
    upstream.as("gina-sub", { email: "gina@upstream.test" });
    const browser = new Browser(t.app);
    const callback = new URL(await roundTrip(browser, "acme"), ISSUER);
    callback.searchParams.set("code", "forged-code-value");
    const refused = await browser.get(callback.pathname + callback.search);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("FEDERATION_UPSTREAM_INVALID");
    expect(await userByEmail("gina@upstream.test")).toBeUndefined();
  });

  it("idp_hint on /login (or in the /authorize request it returns to) jumps straight to that provider", async () => {
    const direct = await t.app.inject({ method: "GET", url: "/login?idp_hint=acme" });
    expect(direct.statusCode).toBe(303);
    expect(direct.headers.location).toBe("/federation/acme/start");
    const returnTo = `/authorize?${new URLSearchParams({ client_id: "x", idp_hint: "corp" })}`;
    const viaAuthorize = await t.app.inject({ method: "GET", url: `/login?return_to=${encodeURIComponent(returnTo)}` });
    expect(viaAuthorize.statusCode).toBe(303);
    expect(viaAuthorize.headers.location).toMatch(/^\/federation\/corp\/start\?return_to=/);
    const unknown = await t.app.inject({ method: "GET", url: "/login?idp_hint=nope" });
    expect(unknown.statusCode).toBe(200);
    expect(unknown.body).toContain('href="/federation/acme/start"');
  });
});
