/**
 * The SDK against a real Tessera: the auth server built in process on an in-memory database and listening on
 * 127.0.0.1, a client registered through the client registry, a user signing in on the hosted login page (driven by
 * fetch with a cookie jar), and a Fastify app using the SDK plugin. Time moves on one TestClock shared by both.
 */
import { createServer } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../../../apps/auth-server/src/config/index.ts";
import { createClient } from "../../../../apps/auth-server/src/libraries/clients/index.ts";
import { TestClock } from "../../../../apps/auth-server/src/libraries/clock.ts";
import { deliverBackchannelLogouts } from "../../../../apps/auth-server/src/libraries/jobs/backchannel.ts";
import { hashPassword } from "../../../../apps/auth-server/src/libraries/passwords.ts";
import { endSessions } from "../../../../apps/auth-server/src/libraries/sessions.ts";
import { insertUser } from "../../../../apps/auth-server/src/queries/users.ts";
import { build } from "../../../../apps/auth-server/test/contract.ts";
import { createTestDatabase } from "../../../db/src/testing.ts";
import { requireUser, tesseraPlugin } from "../../src/fastify.ts";
import { createTessera, type TesseraClient, type TesseraOptions } from "../../src/index.ts";
import { cookieHeader } from "../stub-issuer.ts";

const PASSWORD = "correct horse battery staple 42";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

let clock: TestClock;
let tessera: FastifyInstance;
let shop: FastifyInstance;
let shopClient: TesseraClient;
/** The shop's SDK options; a second `createTessera(shopOptions)` stands for another instance of the same app. */
let shopOptions: TesseraOptions;
let closeDatabase: () => Promise<void>;
let issuer: string;
let shopUrl: string;
let clientId: string;
let clientSecret: string;
let userId: string;

/**
 * The names of the cookies a Set-Cookie list clears (empty value, Max-Age=0), in order; a cookie set to a value makes
 * the list differ, and so does an empty list (a wrong "concurrent refresh" branch returns one).
 */
function clearedNames(setCookies: readonly string[]): string[] {
  return setCookies.map((c) => /^([^=]+)=; Max-Age=0;/.exec(c)?.[1] ?? `not cleared: ${c}`);
}

/** A minimal browser: follows redirects by hand, keeps cookies by name (every server here is 127.0.0.1). */
class Browser {
  jar = new Map<string, string>();
  async get(url: string): Promise<{ response: Response; url: string }> {
    return this.request(url, { method: "GET" });
  }
  async request(url: string, init: RequestInit): Promise<{ response: Response; url: string }> {
    let current = url;
    let options = init;
    for (let hop = 0; hop < 10; hop++) {
      const response = await fetch(current, {
        ...options,
        redirect: "manual",
        headers: { ...(options.headers as Record<string, string>), cookie: cookieHeader([], this.jar) },
      });
      cookieHeader(response.headers.getSetCookie(), this.jar);
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || !location) return { response, url: current };
      await response.body?.cancel();
      current = new URL(location, current).toString();
      options = { method: "GET" };
    }
    throw new Error("too many redirects");
  }
  cookies(): string {
    return cookieHeader([], this.jar);
  }
}

/** Signs in on the shop through Tessera's hosted login form; returns the page reached at the end. */
async function signIn(browser: Browser): Promise<{ response: Response; url: string }> {
  const page = await browser.get(`${shopUrl}/auth/login?returnTo=/me`);
  expect(new URL(page.url).pathname).toBe("/login");
  const html = await page.response.text();
  const hidden = Object.fromEntries(
    [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [
      m[1],
      (m[2] ?? "")
        .replace(/&amp;/g, "&")
        .replace(/&quot;/g, '"')
        .replace(/&#39;/g, "'"),
    ]),
  );
  return browser.request(`${issuer}/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: issuer },
    body: new URLSearchParams({ ...hidden, email: "ada@example.com", password: PASSWORD }).toString(),
  });
}

beforeAll(async () => {
  const [tesseraPort, shopPort] = await Promise.all([freePort(), freePort()]);
  issuer = `http://127.0.0.1:${tesseraPort}`;
  shopUrl = `http://127.0.0.1:${shopPort}`;
  clock = new TestClock();
  const database = await createTestDatabase();
  closeDatabase = () => database.close();
  const config = testConfig({ ISSUER: issuer, ARGON2_MEMORY_KIB: "19456" });
  tessera = await build(config, { database, clock });
  await tessera.listen({ port: tesseraPort, host: "127.0.0.1" });

  const registered = await createClient(tessera.ctx, {
    name: "Integration shop",
    redirectUris: [`${shopUrl}/auth/callback`],
    postLogoutRedirectUris: [`${shopUrl}/`],
    backchannelLogoutUri: `${shopUrl}/auth/backchannel-logout`,
    firstParty: true,
  });
  clientId = registered.client.clientId;
  clientSecret = registered.clientSecret;
  const now = clock.now();
  const user = await insertUser(tessera.ctx.db, {
    email: "ada@example.com",
    passwordHash: await hashPassword(config.passwords, PASSWORD),
    displayName: "Ada",
    now,
  });
  userId = user?.id ?? "";

  shopOptions = {
    issuer,
    clientId,
    clientSecret,
    appSecret: "integration-app-secret-0123456789abcdef",
    redirectUri: `${shopUrl}/auth/callback`,
    postLogoutRedirectUri: `${shopUrl}/`,
    cookies: { secure: false, prefix: "shop" },
    now: () => clock.now().getTime(),
  };
  shopClient = createTessera(shopOptions);
  shop = Fastify();
  await shop.register(tesseraPlugin, { client: shopClient });
  shop.get("/me", { onRequest: requireUser }, async (request) => ({
    id: request.user?.id,
    sid: request.user?.sessionId,
    email: request.user?.email,
    name: request.user?.name,
  }));
  shop.get("/", async () => "home");
  await shop.listen({ port: shopPort, host: "127.0.0.1" });
});

afterAll(async () => {
  await shop?.close();
  await tessera?.close();
  await closeDatabase?.();
});

describe("SDK against a running Tessera", () => {
  it("signs in through /authorize and the hosted login page; the app's own access JWT carries Tessera's identity", async () => {
    const browser = new Browser();
    const end = await signIn(browser);
    expect(end.url).toBe(`${shopUrl}/me`);
    expect(end.response.status).toBe(200);
    const me = (await end.response.json()) as Record<string, string>;
    expect(me).toMatchObject({ id: userId, email: "ada@example.com", name: "Ada" });
    expect(me.sid).toMatch(/^[0-9a-f-]{36}$/);
    expect([...browser.jar.keys()]).toEqual(expect.arrayContaining(["shop-at", "shop-rt", "shop-idt"]));
    expect(browser.jar.get("shop-rt")).toMatch(/^tsr_/);
    expect(browser.jar.has("shop-tx")).toBe(false);
  });

  it("silent sign-in (prompt=none): anonymous without a Tessera session, signed in with one, no page either way", async () => {
    const browser = new Browser();
    const anonymous = await browser.get(`${shopUrl}/auth/login?prompt=none&returnTo=/me`);
    expect(anonymous.url).toBe(`${shopUrl}/me`);
    expect(anonymous.response.status).toBe(401);
    expect(browser.jar.has("shop-at")).toBe(false);
    await signIn(browser);
    for (const name of ["shop-at", "shop-rt", "shop-idt"]) browser.jar.delete(name); // a second app, in effect
    const silent = await browser.get(`${shopUrl}/auth/login?prompt=none&returnTo=/me`);
    expect(silent.url).toBe(`${shopUrl}/me`);
    expect(silent.response.status).toBe(200);
    expect(((await silent.response.json()) as { id: string }).id).toBe(userId);
  });

  it("refreshes through Tessera when the access JWT expires; parallel requests make one rotation", async () => {
    const browser = new Browser();
    await signIn(browser);
    const before = browser.jar.get("shop-rt");
    clock.advance(301);
    const cookies = browser.cookies();
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => fetch(`${shopUrl}/me`, { headers: { cookie: cookies } })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
    const rotated = new Set(responses.map((r) => r.headers.getSetCookie().find((c) => c.startsWith("shop-rt="))));
    expect(rotated.size).toBe(1); // one successor, shared by all eight
    for (const r of responses) cookieHeader(r.headers.getSetCookie(), browser.jar);
    expect(browser.jar.get("shop-rt")).not.toBe(before);
    // The successor works for the next refresh too.
    clock.advance(301);
    const next = await browser.get(`${shopUrl}/me`);
    expect(next.response.status).toBe(200);
  });

  it("two app instances racing one refresh token: the loser rides Tessera's grace window, nothing is revoked", async () => {
    const browser = new Browser();
    await signIn(browser);
    clock.advance(301);
    const cookies = browser.cookies();
    const otherInstance = createTessera(shopOptions);
    const winner = await shopClient.authenticate({ cookieHeader: cookies });
    const loser = await otherInstance.authenticate({ cookieHeader: cookies });
    expect(winner.user?.id).toBe(userId);
    expect(winner.setCookies).toHaveLength(3);
    expect(loser.user?.id).toBe(userId);
    expect(loser.setCookies).toEqual([]);
    // The browser keeps the winner's cookies and the session lives on.
    cookieHeader(winner.setCookies, browser.jar);
    clock.advance(301);
    expect((await browser.get(`${shopUrl}/me`)).response.status).toBe(200);
  });

  it("a stolen refresh token replayed after the grace window ends the session: the SDK clears the cookies", async () => {
    const browser = new Browser();
    await signIn(browser);
    const stolen = browser.cookies();
    clock.advance(301);
    expect((await browser.get(`${shopUrl}/me`)).response.status).toBe(200); // rotates
    clock.advance(30);
    // Another instance (no shared refresh memory) sees the old token: Tessera detects reuse and ends the session.
    const attacker = createTessera(shopOptions);
    const replay = await attacker.authenticate({ cookieHeader: stolen });
    expect(replay.user).toBeNull();
    expect(replay.error?.code).toBe("REFRESH_FAILED");
    expect(replay.error?.oauthError).toBe("invalid_grant");
    expect(clearedNames(replay.setCookies)).toEqual(["shop-at", "shop-rt", "shop-idt"]);
    expect(replay.setCookies.every((c) => c.includes("Max-Age=0"))).toBe(true);
    // The legitimate browser is signed out too at its next refresh (the whole session ended).
    clock.advance(301);
    const after = await fetch(`${shopUrl}/me`, { headers: { cookie: browser.cookies() } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { code: string }).code).toBe("REFRESH_FAILED");
  });

  it("logout ends the session at Tessera for every app; the back-channel call revokes the access JWT at once", async () => {
    const browser = new Browser();
    await signIn(browser);
    const copy = browser.cookies(); // e.g. the same cookies in another tab of this app served by another instance
    const otherInstance = createTessera(shopOptions);
    const signedIn = await otherInstance.authenticate({ cookieHeader: copy });
    expect(signedIn.user?.id).toBe(userId);
    const sid = signedIn.user?.sessionId;
    const revoked: string[] = [];
    shopClient.onSessionRevoked((event) => {
      if (event.sessionId === sid) revoked.push(event.reason);
    });

    const out = await browser.request(`${shopUrl}/auth/logout`, { method: "POST" });
    // Back on the app's page with no OAuth parameters left in its URL (the SDK sends no logout state).
    expect(out.url).toBe(`${shopUrl}/`);
    expect(browser.jar.has("shop-at")).toBe(false);
    expect(browser.jar.has("shop-rt")).toBe(false);

    // Tessera queued a back-channel logout for the shop; deliver it now (the worker does this every few seconds).
    const report = await deliverBackchannelLogouts(tessera.ctx);
    // (Sessions ended by earlier tests have their notifications in the same run.)
    expect(report.failed).toBe(0);
    expect(report.delivered).toBeGreaterThanOrEqual(1);
    expect(revoked).toEqual(["logout", "backchannel_logout"]);
    const replay = await fetch(`${shopUrl}/me`, { headers: { cookie: copy } });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { code: string }).code).toBe("SESSION_REVOKED");
    // Signing in again on the shop needs the password again: the Tessera session is gone.
    const again = await browser.get(`${shopUrl}/auth/login`);
    expect(new URL(again.url).pathname).toBe("/login");
  });

  it("every session of the user ended at Tessera (account disable, deletion, password reset): the access JWT is refused at once, the refresh too", async () => {
    const browser = new Browser();
    await signIn(browser);
    const cookies = browser.cookies();
    expect((await fetch(`${shopUrl}/me`, { headers: { cookie: cookies } })).status).toBe(200);
    // What the account paths call: every session of the user ends, every client of them gets a back-channel logout.
    const ended = await endSessions(tessera.ctx, tessera.ctx.db, { userId }, "account_disabled");
    expect(ended.length).toBeGreaterThanOrEqual(1);
    await deliverBackchannelLogouts(tessera.ctx);
    const now = await fetch(`${shopUrl}/me`, { headers: { cookie: cookies } });
    expect(now.status).toBe(401);
    expect(((await now.json()) as { code: string }).code).toBe("SESSION_REVOKED");
    // Another instance of the app that missed the back-channel call: the JWT lives out its minutes, then the refresh
    // is refused by Tessera and the cookies are cleared.
    clock.advance(301);
    const other = await createTessera(shopOptions).authenticate({ cookieHeader: cookies });
    expect(other.user).toBeNull();
    expect(other.error?.code).toBe("REFRESH_FAILED");
    expect(clearedNames(other.setCookies)).toEqual(["shop-at", "shop-rt", "shop-idt"]);
    expect(other.setCookies.every((c) => c.includes("Max-Age=0"))).toBe(true);
  });
});
