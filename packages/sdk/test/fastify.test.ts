import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePermission, requireUser, tesseraPlugin } from "../src/fastify.ts";
import { cookieHeader, type StubIssuer, startStubIssuer } from "./stub-issuer.ts";

let clock = Date.UTC(2026, 10, 21, 12, 0, 0);
let stub: StubIssuer;
let app: FastifyInstance;

beforeAll(async () => {
  stub = await startStubIssuer(() => clock);
  stub.idTokenClaims = { permissions: ["orders:read"] };
  app = Fastify();
  await app.register(tesseraPlugin, {
    issuer: stub.issuer,
    clientId: stub.clientId,
    clientSecret: stub.clientSecret,
    appSecret: randomBytes(32),
    redirectUri: "https://shop.example/auth/callback",
    postLogoutRedirectUri: "https://shop.example/",
    cookies: { secure: true, prefix: "shop" },
    now: () => clock,
  });
  app.get("/public", async (request) => ({ user: request.user?.id ?? null }));
  app.get("/me", { onRequest: requireUser }, async (request) => ({
    id: request.user?.id,
    email: request.user?.email,
  }));
  app.get("/orders", { preHandler: requirePermission("orders:read") }, async () => ({ ok: true }));
  app.get("/admin", { preHandler: requirePermission("admin") }, async () => ({ ok: true }));
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await stub.close();
});

async function signIn(returnTo = "/me") {
  const jar = new Map<string, string>();
  const login = await app.inject({ method: "GET", url: `/auth/login?returnTo=${encodeURIComponent(returnTo)}` });
  expect(login.statusCode).toBe(302);
  expect(login.headers["cache-control"]).toBe("no-store");
  const setCookies = ([] as string[]).concat(login.headers["set-cookie"] ?? []);
  const query = stub.authorize(String(login.headers.location));
  const callback = await app.inject({
    method: "GET",
    url: `/auth/callback?${query}`,
    headers: { cookie: cookieHeader(setCookies, jar) },
  });
  cookieHeader(([] as string[]).concat(callback.headers["set-cookie"] ?? []), jar);
  return { jar, callback };
}

describe("Fastify plugin", () => {
  it("answers 503 ISSUER_UNAVAILABLE (not a 500) when Tessera cannot be reached at sign-in", async () => {
    const down = Fastify();
    await down.register(tesseraPlugin, {
      issuer: "http://127.0.0.1:9",
      clientId: "c",
      clientSecret: "s",
      appSecret: randomBytes(32),
      redirectUri: "https://shop.example/auth/callback",
      cookies: { secure: true },
      httpTimeoutMs: 1000,
    });
    const response = await down.inject({ method: "GET", url: "/auth/login" });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ code: "ISSUER_UNAVAILABLE", message: "The identity provider is unavailable." });
    await down.close();
  });

  it("signs in through /auth/login and /auth/callback with __Host- Secure cookies, then 303 to returnTo", async () => {
    const { callback, jar } = await signIn("/me");
    expect(callback.statusCode).toBe(303);
    expect(callback.headers.location).toBe("/me");
    expect(callback.headers["cache-control"]).toBe("no-store");
    const cookies = ([] as string[]).concat(callback.headers["set-cookie"] ?? []);
    expect(cookies.map((c) => c.split("=")[0])).toEqual([
      "__Host-shop-at",
      "__Host-shop-rt",
      "__Host-shop-idt",
      "__Host-shop-tx",
    ]);
    for (const c of cookies) expect(c).toMatch(/; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    const me = await app.inject({ method: "GET", url: "/me", headers: { cookie: cookieHeader([], jar) } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toEqual({ id: "user-1", email: "ada@example.com" });
    expect(me.headers["set-cookie"]).toBeUndefined();
  });

  it("a failed callback answers the error code and clears the transaction cookie", async () => {
    const login = await app.inject({ method: "GET", url: "/auth/login" });
    const query = stub.authorize(String(login.headers.location));
    query.set("state", "forged");
    const response = await app.inject({
      method: "GET",
      url: `/auth/callback?${query}`,
      headers: { cookie: cookieHeader(([] as string[]).concat(login.headers["set-cookie"] ?? [])) },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      code: "STATE_MISMATCH",
      message: "The sign-in response does not match this browser's sign-in attempt.",
    });
    expect(response.headers["set-cookie"]).toBe("__Host-shop-tx=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax");
  });

  it("onCallbackError renders a failed callback; the transaction cookie is still cleared and nothing is cached", async () => {
    const custom = Fastify();
    await custom.register(tesseraPlugin, {
      issuer: stub.issuer,
      clientId: stub.clientId,
      clientSecret: stub.clientSecret,
      appSecret: randomBytes(32),
      redirectUri: "https://shop.example/auth/callback",
      cookies: { secure: true, prefix: "shop" },
      now: () => clock,
      onCallbackError: (error, _request, reply) =>
        reply.code(error.status).type("text/html").send(`<p>${error.code}</p>`),
    });
    try {
      const login = await custom.inject({ method: "GET", url: "/auth/login" });
      const query = stub.authorize(String(login.headers.location));
      query.set("state", "forged");
      const response = await custom.inject({
        method: "GET",
        url: `/auth/callback?${query}`,
        headers: { cookie: cookieHeader(([] as string[]).concat(login.headers["set-cookie"] ?? [])) },
      });
      expect(response.statusCode).toBe(400);
      expect(response.headers["content-type"]).toBe("text/html");
      expect(response.body).toBe("<p>STATE_MISMATCH</p>");
      expect(response.headers["cache-control"]).toBe("no-store");
      expect(response.headers["set-cookie"]).toBe("__Host-shop-tx=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax");
    } finally {
      await custom.close();
    }
  });

  it("rejects an open redirect through returnTo", async () => {
    const { callback } = await signIn("//evil.example/phish");
    expect(callback.headers.location).toBe("/");
  });

  it("requireUser answers 401 with a stable code; anonymous routes see request.user = null", async () => {
    const anonymous = await app.inject({ method: "GET", url: "/me" });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers["cache-control"]).toBe("no-store");
    expect(anonymous.json()).toEqual({ code: "UNAUTHENTICATED", message: "Sign-in required." });
    expect((await app.inject({ method: "GET", url: "/public" })).json()).toEqual({ user: null });
  });

  it("a tampered access cookie is refused with ACCESS_TOKEN_INVALID", async () => {
    const { jar } = await signIn();
    const jwt = jar.get("__Host-shop-at") ?? "";
    const response = await app.inject({
      method: "GET",
      url: "/me",
      headers: { cookie: `__Host-shop-at=${jwt.slice(0, 40)}x${jwt.slice(41)}` },
    });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe("ACCESS_TOKEN_INVALID");
  });

  it("requirePermission: 200 with the permission from Tessera, 403 FORBIDDEN without", async () => {
    const { jar } = await signIn();
    const cookie = cookieHeader([], jar);
    expect((await app.inject({ method: "GET", url: "/orders", headers: { cookie } })).statusCode).toBe(200);
    const admin = await app.inject({ method: "GET", url: "/admin", headers: { cookie } });
    expect(admin.statusCode).toBe(403);
    expect(admin.json()).toEqual({ code: "FORBIDDEN", message: "You do not have permission to do this." });
    expect((await app.inject({ method: "GET", url: "/admin" })).statusCode).toBe(401);
  });

  it("refreshes transparently when the access JWT expired: the request succeeds and both cookies are renewed", async () => {
    const { jar } = await signIn();
    clock += 301_000;
    try {
      const response = await app.inject({ method: "GET", url: "/me", headers: { cookie: cookieHeader([], jar) } });
      expect(response.statusCode).toBe(200);
      // The renewed refresh token must never sit in a shared cache.
      expect(response.headers["cache-control"]).toBe("no-store");
      const renewed = ([] as string[]).concat(response.headers["set-cookie"] ?? []);
      expect(renewed.map((c) => c.split("=")[0])).toEqual(["__Host-shop-at", "__Host-shop-rt", "__Host-shop-idt"]);
    } finally {
      clock -= 301_000;
    }
  });

  it("back-channel logout: 200, then the session's access JWT is refused at once", async () => {
    stub.sid = "sid-bc";
    const { jar } = await signIn();
    const cookie = cookieHeader([], jar);
    expect((await app.inject({ method: "GET", url: "/me", headers: { cookie } })).statusCode).toBe(200);
    const iat = Math.floor(clock / 1000);
    const logoutToken = await stub.sign(
      {
        iss: stub.issuer,
        aud: stub.clientId,
        sub: "user-1",
        sid: "sid-bc",
        iat,
        exp: iat + 120,
        jti: "j1",
        events: { "http://schemas.openid.net/event/backchannel-logout": {} },
      },
      { typ: "logout+jwt" },
    );
    const bad = await app.inject({
      method: "POST",
      url: "/auth/backchannel-logout",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: "logout_token=garbage",
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: "invalid_request", error_description: "The logout token is invalid." });
    const ok = await app.inject({
      method: "POST",
      url: "/auth/backchannel-logout",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams({ logout_token: logoutToken }).toString(),
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers["cache-control"]).toBe("no-store");
    const after = await app.inject({ method: "GET", url: "/me", headers: { cookie } });
    expect(after.statusCode).toBe(401);
    expect(after.json().code).toBe("SESSION_REVOKED");
    expect(([] as string[]).concat(after.headers["set-cookie"] ?? [])).toHaveLength(3);
    stub.sid = "sid-1";
  });

  it("POST /auth/logout from a page of another origin (CSRF) is refused with 403 and changes nothing", async () => {
    stub.sid = "sid-csrf"; // the same-origin sign-out at the end revokes this session in the app
    const { jar } = await signIn();
    stub.sid = "sid-1";
    const revokedBefore = stub.revoked.length;
    for (const origin of ["https://evil.example", "https://shop.example:8443", "null"]) {
      const response = await app.inject({
        method: "POST",
        url: "/auth/logout",
        headers: { cookie: cookieHeader([], jar), origin },
      });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toEqual({
        code: "CROSS_ORIGIN_REQUEST",
        message: "This request came from another site.",
      });
      expect(response.headers["set-cookie"]).toBeUndefined();
    }
    expect(stub.revoked.length).toBe(revokedBefore);
    const me = await app.inject({ method: "GET", url: "/me", headers: { cookie: cookieHeader([], jar) } });
    expect(me.statusCode).toBe(200);
    const own = await app.inject({
      method: "POST",
      url: "/auth/logout",
      headers: { cookie: cookieHeader([], jar), origin: "https://shop.example" },
    });
    expect(own.statusCode).toBe(303);
  });

  it("a WebSocket upgrade from another origin does not use the cookies (cross-site WebSocket hijacking)", async () => {
    const { jar } = await signIn();
    const upgrade = (origin: string, auth: Record<string, string>) =>
      app.inject({
        method: "GET",
        url: "/me",
        headers: { ...auth, upgrade: "websocket", connection: "upgrade", origin },
      });
    const cookie = { cookie: cookieHeader([], jar) };
    const foreign = await upgrade("https://game.shop.example", cookie);
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json()).toEqual({ code: "CROSS_ORIGIN_REQUEST", message: "This request came from another site." });
    expect((await upgrade("https://shop.example", cookie)).statusCode).toBe(200);
    // A bearer token is not sent by the browser on its own: any origin may present it.
    const bearer = { authorization: `Bearer ${jar.get("__Host-shop-at")}` };
    expect((await upgrade("https://game.shop.example", bearer)).statusCode).toBe(200);
    // An ordinary (non-upgrade) request is not affected by Origin.
    const get = await app.inject({
      method: "GET",
      url: "/me",
      headers: { ...cookie, origin: "https://elsewhere.example" },
    });
    expect(get.statusCode).toBe(200);
  });

  it("POST /auth/logout clears the cookies and redirects (303) to Tessera's end-session endpoint", async () => {
    const { jar } = await signIn();
    const response = await app.inject({
      method: "POST",
      url: "/auth/logout",
      headers: { cookie: cookieHeader([], jar) },
    });
    expect(response.statusCode).toBe(303);
    const location = new URL(String(response.headers.location));
    expect(location.origin + location.pathname).toBe(`${stub.issuer}/logout`);
    expect(location.searchParams.get("post_logout_redirect_uri")).toBe("https://shop.example/");
    const cleared = ([] as string[]).concat(response.headers["set-cookie"] ?? []);
    expect(cleared.map((c) => /^([^=]+)=; Max-Age=0;/.exec(c)?.[1] ?? `not cleared: ${c}`)).toEqual([
      "__Host-shop-at",
      "__Host-shop-rt",
      "__Host-shop-idt",
      "__Host-shop-tx",
    ]);
    expect(cleared.every((c) => c.includes("Max-Age=0"))).toBe(true);
    expect((await app.inject({ method: "GET", url: "/auth/logout" })).statusCode).toBe(404);
  });
});
