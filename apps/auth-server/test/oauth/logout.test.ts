import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { backchannelLogoutJobs, sessions } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { eq } from "drizzle-orm";
import { createLocalJWKSet, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { disableClient } from "../../src/libraries/clients/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import {
  BACKCHANNEL_EVENT,
  DELIVERY,
  deliverBackchannelLogouts,
  drainBackchannelLogouts,
} from "../../src/libraries/jobs/backchannel.ts";
import { publicJwks } from "../../src/libraries/keys/index.ts";
import { endSessions, type SessionRow, type UserRow } from "../../src/libraries/sessions.ts";
import { build } from "../contract.ts";
import type { TestApp } from "../helpers.ts";
import {
  authorizeQuery,
  buildOAuthApp,
  createUser,
  FORM,
  form,
  locationParams,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "./helpers.ts";

/** A client app's back-channel logout endpoint on 127.0.0.1; answers with `status` (a number or a function). */
interface Receiver {
  url: string;
  received: Array<{ path: string; contentType: string | undefined; logoutToken: string | null }>;
  status: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: "", received: [], status: 200, close: async () => {} };
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      receiver.received.push({
        path: req.url ?? "",
        contentType: req.headers["content-type"],
        logoutToken: new URLSearchParams(body).get("logout_token"),
      });
      res.statusCode = receiver.status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () => new Promise((resolve) => server.close(() => resolve()));
  return receiver;
}

let t: TestApp;
let receiver: Receiver;
let shop: TestClient;
let game: TestClient;
let user: UserRow;
let session: SessionRow;
let cookie: string;
const ISSUER = "http://localhost:3000";

beforeAll(async () => {
  t = await buildOAuthApp();
  receiver = await startReceiver();
  shop = await registerClient(t.app, { backchannelLogoutUri: `${receiver.url}/shop/bcl` });
  game = await registerClient(t.app, {
    name: "Game",
    postLogoutRedirectUris: ["https://game.example/bye"],
    backchannelLogoutUri: `${receiver.url}/game/bcl`,
  });
});
afterAll(async () => {
  await t.close();
  await receiver.close();
});
beforeEach(async () => {
  receiver.received = [];
  receiver.status = 200;
  // Deliver (and so clear) whatever earlier tests queued.
  await deliverBackchannelLogouts(t.app.ctx);
  receiver.received = [];
  user = await createUser(t.app);
  ({ cookie, session } = await sessionCookie(t.app, user));
});

async function verifyLogoutToken(token: string | null, audience: string) {
  const jwks = createLocalJWKSet(await publicJwks(t.app.ctx));
  return jwtVerify(token ?? "", jwks, {
    issuer: ISSUER,
    audience,
    typ: "logout+jwt",
    currentDate: t.clock.now(),
  });
}

const sessionRow = async () =>
  (await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, session.id)))[0] as SessionRow;

function expectCookieCleared(response: { cookies: Array<{ name: string; value: string; expires?: Date }> }) {
  const cleared = response.cookies.find((c) => c.name === "tessera_session");
  expect(cleared?.value).toBe("");
  expect(cleared?.expires?.getTime()).toBe(0);
}

describe("silent sign-on across apps and logout everywhere", () => {
  it("B gets a code with no prompt; both chains share one expiry; signing out from B ends A and notifies both", async () => {
    const a = await tokensFor(t.app, shop, cookie);
    const silent = await t.app.inject({
      method: "GET",
      url: `/authorize?${authorizeQuery(game, { prompt: "none" })}`,
      headers: { cookie },
    });
    expect(silent.statusCode).toBe(302);
    expect(locationParams(silent).get("code")).toBeTruthy();
    const b = await tokensFor(t.app, game, cookie);
    expect(b.session_expires_at).toBe(a.session_expires_at);

    const logout = await t.app.inject({
      method: "GET",
      url: `/logout?${new URLSearchParams({ id_token_hint: b.id_token, post_logout_redirect_uri: "https://game.example/bye", state: "s-1" })}`,
      headers: { cookie },
    });
    expect(logout.statusCode).toBe(302);
    expect(logout.headers.location).toBe("https://game.example/bye?state=s-1");
    expectCookieCleared(logout);
    expect((await sessionRow()).revokedReason).toBe("signed_out");

    expect((await refresh(t.app, shop, a.refresh_token)).json()).toEqual({
      error: "invalid_grant",
      error_description: "The refresh token has been revoked.",
    });
    const report = await deliverBackchannelLogouts(t.app.ctx);
    expect(report).toEqual({ delivered: 2, failed: 0, abandoned: 0 });
    expect(receiver.received.map((r) => r.path).sort()).toEqual(["/game/bcl", "/shop/bcl"]);
    for (const r of receiver.received) {
      expect(r.contentType).toBe("application/x-www-form-urlencoded");
      const audience = r.path === "/shop/bcl" ? shop.clientId : game.clientId;
      const { payload, protectedHeader } = await verifyLogoutToken(r.logoutToken, audience);
      expect(protectedHeader.typ).toBe("logout+jwt");
      expect(payload).toMatchObject({ iss: ISSUER, aud: audience, sub: user.id, sid: session.id });
      expect(payload.events).toEqual({ [BACKCHANNEL_EVENT]: {} });
      expect(payload.nonce).toBeUndefined();
      expect(typeof payload.jti).toBe("string");
      expect((payload.exp as number) - (payload.iat as number)).toBe(120);
    }
    // Nothing is delivered twice.
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 0, failed: 0, abandoned: 0 });
    // The browser must sign in again.
    const again = await t.app.inject({ method: "GET", url: `/authorize?${authorizeQuery(shop)}`, headers: { cookie } });
    expect(new URL(again.headers.location as string, ISSUER).pathname).toBe("/login");
  });
});

describe("RP-initiated logout rules", () => {
  it("an expired id_token_hint is accepted (signature still verified)", async () => {
    const a = await tokensFor(t.app, shop, cookie);
    t.clock.advance(3600);
    const response = await t.app.inject({
      method: "GET",
      url: `/logout?id_token_hint=${a.id_token}`,
      headers: { cookie },
    });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("You are signed out");
    expect((await sessionRow()).revokedAt).not.toBeNull();
  });

  it("a hint from an app disabled meanwhile still signs out (every app of the session), without the redirect", async () => {
    const retired = await registerClient(t.app, {
      name: "Retired",
      postLogoutRedirectUris: ["https://retired.example/"],
    });
    const a = await tokensFor(t.app, shop, cookie);
    const r = await tokensFor(t.app, retired, cookie);
    await disableClient(t.app.ctx, retired.clientId);
    const response = await t.app.inject({
      method: "GET",
      url: `/logout?${new URLSearchParams({ id_token_hint: r.id_token, post_logout_redirect_uri: "https://retired.example/" })}`,
      headers: { cookie },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers.location).toBeUndefined();
    expect(response.body).toContain("You are signed out");
    expectCookieCleared(response);
    expect((await sessionRow()).revokedReason).toBe("signed_out");
    expect((await refresh(t.app, shop, a.refresh_token)).statusCode).toBe(400);
    // Without a hint, an unknown or disabled client_id is still an error page.
    const unknown = await t.app.inject({ method: "GET", url: `/logout?client_id=${retired.clientId}` });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.body).toContain("The application is unknown or disabled.");
  });

  it("the hint alone (no cookie, e.g. a server-side logout) ends the session it names", async () => {
    const a = await tokensFor(t.app, shop, cookie);
    const response = await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${a.id_token}` });
    expect(response.statusCode).toBe(200);
    expect((await sessionRow()).revokedAt).not.toBeNull();
  });

  it("a hint for another user than the browser's: that user's session ends, the browser's stays", async () => {
    const someoneElse = await createUser(t.app);
    const theirs = await sessionCookie(t.app, someoneElse);
    const hint = (await tokensFor(t.app, shop, theirs.cookie)).id_token;
    const response = await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${hint}`, headers: { cookie } });
    expect(response.statusCode).toBe(200);
    expect(response.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    expect((await sessionRow()).revokedAt).toBeNull();
    const [ended] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, theirs.session.id));
    expect(ended?.revokedReason).toBe("signed_out");
  });

  it("an unregistered post_logout_redirect_uri: error page, no redirect, nothing ended", async () => {
    const a = await tokensFor(t.app, shop, cookie);
    for (const uri of [
      "https://evil.example/",
      "https://shop.example",
      "https://shop.example/?x=1",
      "https://game.example/bye",
    ]) {
      const response = await t.app.inject({
        method: "GET",
        url: `/logout?${new URLSearchParams({ id_token_hint: a.id_token, post_logout_redirect_uri: uri })}`,
        headers: { cookie },
      });
      expect(response.statusCode).toBe(400);
      expect(response.headers.location).toBeUndefined();
      expect(response.body).toContain("The post_logout_redirect_uri is not registered for this application.");
    }
    expect((await sessionRow()).revokedAt).toBeNull();
  });

  it("a forged or foreign id_token_hint: error page, nothing ended", async () => {
    const forged = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from(
      JSON.stringify({ sub: user.id, aud: shop.clientId, sid: session.id }),
    ).toString("base64url")}.`;
    const response = await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${forged}`, headers: { cookie } });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain("The id_token_hint is not a valid ID token issued by Tessera.");
    // Someone else's real ID token, its payload rewritten to name this user and session (signature kept), and the
    // same claims signed by a key that is not Tessera's under Tessera's kid: only the signature tells.
    const theirs = await sessionCookie(t.app, await createUser(t.app));
    const [header, payload, signature] = (await tokensFor(t.app, shop, theirs.cookie)).id_token.split(".") as [
      string,
      string,
      string,
    ];
    const claims = { ...JSON.parse(Buffer.from(payload, "base64url").toString()), sub: user.id, sid: session.id };
    const tampered = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
    const { privateKey } = await generateKeyPair("RS256");
    const foreign = await new SignJWT(claims)
      .setProtectedHeader(JSON.parse(Buffer.from(header, "base64url").toString()))
      .sign(privateKey);
    for (const hint of [tampered, foreign]) {
      const rejected = await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${hint}` });
      expect(rejected.statusCode).toBe(400);
      expect(rejected.body).toContain("The id_token_hint is not a valid ID token issued by Tessera.");
    }
    expect((await sessionRow()).revokedAt).toBeNull();
    // An access token is not an ID token.
    const a = await tokensFor(t.app, shop, cookie);
    const asHint = await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${a.access_token}` });
    expect(asHint.statusCode).toBe(400);
    expect((await sessionRow()).revokedAt).toBeNull();
  });

  it("client_id must agree with the hint; post_logout_redirect_uri needs a client", async () => {
    const a = await tokensFor(t.app, shop, cookie);
    const mismatch = await t.app.inject({
      method: "GET",
      url: `/logout?${new URLSearchParams({ id_token_hint: a.id_token, client_id: game.clientId })}`,
    });
    expect(mismatch.statusCode).toBe(400);
    expect(mismatch.body).toContain("The client_id does not match the id_token_hint.");
    const orphan = await t.app.inject({
      method: "GET",
      url: `/logout?${new URLSearchParams({ post_logout_redirect_uri: "https://shop.example/" })}`,
    });
    expect(orphan.statusCode).toBe(400);
    expect((await sessionRow()).revokedAt).toBeNull();
  });

  it("GET without a hint changes nothing: it shows a confirmation form; its POST needs the CSRF token", async () => {
    const page = await t.app.inject({
      method: "GET",
      url: `/logout?${new URLSearchParams({ client_id: game.clientId, post_logout_redirect_uri: "https://game.example/bye", state: "s-2" })}`,
      headers: { cookie },
    });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('action="/logout"');
    expect((await sessionRow()).revokedAt).toBeNull();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] as string;
    const csrfCookie = page.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
    const fields = { client_id: game.clientId, post_logout_redirect_uri: "https://game.example/bye", state: "s-2" };

    const forged = await t.app.inject({
      method: "POST",
      url: "/logout",
      headers: { ...FORM, cookie: `${cookie}; ${csrfCookie}` },
      payload: form(fields),
    });
    expect(forged.statusCode).toBe(403);
    expect((await sessionRow()).revokedAt).toBeNull();

    const confirmed = await t.app.inject({
      method: "POST",
      url: "/logout",
      headers: { ...FORM, cookie: `${cookie}; ${csrfCookie}` },
      payload: form({ ...fields, _csrf: csrf }),
    });
    expect(confirmed.statusCode).toBe(303);
    expect(confirmed.headers.location).toBe("https://game.example/bye?state=s-2");
    expectCookieCleared(confirmed);
    expect((await sessionRow()).revokedReason).toBe("signed_out");
  });

  it("an RP may POST the logout request with an id_token_hint (no CSRF token needed: the hint is the proof)", async () => {
    const a = await tokensFor(t.app, shop, cookie);
    const response = await t.app.inject({
      method: "POST",
      url: "/logout",
      headers: { ...FORM, cookie },
      payload: form({ id_token_hint: a.id_token, post_logout_redirect_uri: "https://shop.example/", state: "x" }),
    });
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe("https://shop.example/?state=x");
    expect((await sessionRow()).revokedAt).not.toBeNull();
  });

  it("hostile input: duplicated parameters, JSON bodies, wrong methods", async () => {
    const dup = await t.app.inject({ method: "GET", url: "/logout?state=a&state=b" });
    expect(dup.statusCode).toBe(400);
    expect(dup.body).toContain("The state parameter is included more than once.");
    const json = await t.app.inject({
      method: "POST",
      url: "/logout",
      headers: { "content-type": "application/json", cookie },
      payload: "{}",
    });
    expect(json.statusCode).toBe(400);
    const put = await t.app.inject({ method: "PUT", url: "/logout" });
    expect(put.statusCode).toBe(405);
    expect((await sessionRow()).revokedAt).toBeNull();
  });
});

describe("back-channel delivery", () => {
  async function endWithHint() {
    const a = await tokensFor(t.app, shop, cookie);
    await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${a.id_token}`, headers: { cookie } });
    const jobs = await t.app.ctx.db
      .select()
      .from(backchannelLogoutJobs)
      .where(eq(backchannelLogoutJobs.sessionId, session.id));
    expect(jobs).toHaveLength(1);
    return jobs[0]?.id as string;
  }
  const job = async (id: string) =>
    (await t.app.ctx.db.select().from(backchannelLogoutJobs).where(eq(backchannelLogoutJobs.id, id)))[0];

  it("retries failures with exponential backoff, then delivers", async () => {
    const id = await endWithHint();
    receiver.status = 500;
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 0, failed: 1, abandoned: 0 });
    expect(await job(id)).toMatchObject({ attempts: 1, lastError: "HTTP 500", deliveredAt: null });
    expect((await job(id))?.nextAttemptAt.getTime()).toBe(t.clock.now().getTime() + 10_000);
    // Not due yet.
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 0, failed: 0, abandoned: 0 });
    t.clock.advance(10);
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 0, failed: 1, abandoned: 0 });
    expect((await job(id))?.nextAttemptAt.getTime()).toBe(t.clock.now().getTime() + 20_000);
    receiver.status = 204;
    t.clock.advance(20);
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 1, failed: 0, abandoned: 0 });
    expect((await job(id))?.deliveredAt).not.toBeNull();
    expect(receiver.received).toHaveLength(3);
  });

  it("abandons a job after the maximum number of attempts; the delay is capped", async () => {
    const id = await endWithHint();
    receiver.status = 503;
    for (let attempt = 1; attempt < DELIVERY.maxAttempts; attempt++) {
      expect((await deliverBackchannelLogouts(t.app.ctx)).failed).toBe(1);
      t.clock.advance(DELIVERY.maxDelaySeconds);
    }
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 0, failed: 0, abandoned: 1 });
    expect((await job(id))?.abandonedAt).not.toBeNull();
    t.clock.advance(DELIVERY.maxDelaySeconds * 2);
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 0, failed: 0, abandoned: 0 });
  });

  it("an unreachable endpoint is a failure, not a crash", async () => {
    const closed = await startReceiver();
    await closed.close();
    const unreachable = await registerClient(t.app, { backchannelLogoutUri: `${closed.url}/bcl` });
    const a = await tokensFor(t.app, unreachable, cookie);
    await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${a.id_token}`, headers: { cookie } });
    const report = await deliverBackchannelLogouts(t.app.ctx);
    expect(report.failed).toBe(1);
    const [row] = await t.app.ctx.db
      .select()
      .from(backchannelLogoutJobs)
      .where(eq(backchannelLogoutJobs.clientId, unreachable.client.id));
    expect(row?.lastError).toBe("ECONNREFUSED");
    await t.app.ctx.db.delete(backchannelLogoutJobs).where(eq(backchannelLogoutJobs.clientId, unreachable.client.id));
  });
});

describe("delivery under load", () => {
  it("a client that never answers times out and is retried later", async () => {
    const hanging = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    try {
      const slow = await registerClient(t.app, {
        backchannelLogoutUri: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/bcl`,
      });
      const a = await tokensFor(t.app, slow, cookie);
      await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${a.id_token}`, headers: { cookie } });
      expect(await deliverBackchannelLogouts(t.app.ctx, undefined, { timeoutMs: 200 })).toEqual({
        delivered: 0,
        failed: 1,
        abandoned: 0,
      });
      const [row] = await t.app.ctx.db
        .select()
        .from(backchannelLogoutJobs)
        .where(eq(backchannelLogoutJobs.clientId, slow.client.id));
      expect(row).toMatchObject({ attempts: 1, lastError: "timeout", deliveredAt: null, abandonedAt: null });
      await t.app.ctx.db.delete(backchannelLogoutJobs).where(eq(backchannelLogoutJobs.clientId, slow.client.id));
    } finally {
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
  });

  it("workers running at once (several instances) deliver each notification exactly once", async () => {
    const users = await Promise.all(Array.from({ length: 6 }, () => createUser(t.app)));
    for (const u of users) {
      const s = await sessionCookie(t.app, u);
      const a = await tokensFor(t.app, shop, s.cookie);
      await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${a.id_token}`, headers: { cookie: s.cookie } });
    }
    const reports = await Promise.all(Array.from({ length: 4 }, () => deliverBackchannelLogouts(t.app.ctx)));
    expect(reports.reduce((sum, r) => sum + r.delivered, 0)).toBe(6);
    expect(receiver.received).toHaveLength(6);
    expect(new Set(receiver.received.map((r) => r.logoutToken)).size).toBe(6);
  });
});

describe("backlog", () => {
  it("a backlog larger than one batch is delivered in one worker tick (drain), each job once", async () => {
    const user = await createUser(t.app);
    const count = DELIVERY.batchSize + 10;
    for (let i = 0; i < count; i++) {
      const s = await sessionCookie(t.app, user);
      await tokensFor(t.app, shop, s.cookie);
    }
    await endSessions(t.app.ctx, t.app.ctx.db, { userId: user.id }, "account_disabled");
    expect(await drainBackchannelLogouts(t.app.ctx)).toEqual({ delivered: count, failed: 0, abandoned: 0 });
    expect(receiver.received).toHaveLength(count);
    expect(await drainBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 0, failed: 0, abandoned: 0 });
  });
});

describe("durability", () => {
  it("a restart loses nothing: jobs queued by one instance are delivered by the next", async () => {
    const database = await createTestDatabase();
    const clock = new TestClock();
    const local = await startReceiver();
    try {
      const first = await build(testConfig(), { database, clock });
      await first.ready();
      const client = await registerClient(first, { backchannelLogoutUri: `${local.url}/bcl` });
      const u = await createUser(first);
      const s = await sessionCookie(first, u);
      const tokens = await tokensFor(first, client, s.cookie);
      await first.inject({ method: "GET", url: `/logout?id_token_hint=${tokens.id_token}` });
      await first.close(); // no delivery happened before the "restart"
      expect(local.received).toHaveLength(0);

      const second = await build(testConfig(), { database, clock });
      await second.ready();
      expect(await deliverBackchannelLogouts(second.ctx)).toEqual({ delivered: 1, failed: 0, abandoned: 0 });
      expect(local.received).toHaveLength(1);
      await second.close();
    } finally {
      await local.close();
      await database.close();
    }
  });

  it("a job claimed by an instance that died is picked up again once its lease runs out", async () => {
    const { claimDueJobs } = await import("../../src/queries/backchannel.ts");
    const a = await tokensFor(t.app, shop, cookie);
    await t.app.inject({ method: "GET", url: `/logout?id_token_hint=${a.id_token}`, headers: { cookie } });
    const now = t.clock.now();
    const claimed = await claimDueJobs(t.app.ctx.db, now, new Date(now.getTime() + DELIVERY.leaseSeconds * 1000), 10);
    expect(claimed).toHaveLength(1);
    // The claiming instance "dies" here. Another run finds nothing due while the lease holds...
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 0, failed: 0, abandoned: 0 });
    t.clock.advance(DELIVERY.leaseSeconds);
    // ...and delivers it after.
    expect(await deliverBackchannelLogouts(t.app.ctx)).toEqual({ delivered: 1, failed: 0, abandoned: 0 });
  });
});
