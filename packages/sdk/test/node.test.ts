import { randomBytes } from "node:crypto";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTessera } from "../src/index.ts";
import {
  authenticateUpgrade,
  requirePermission,
  requireUser,
  type TesseraRequest,
  tesseraMiddleware,
} from "../src/node.ts";
import { cookieHeader, type StubIssuer, startStubIssuer } from "./stub-issuer.ts";

let stub: StubIssuer;
let clock = Date.now();
let server: Server;
let base: string;
/** What the upgrade handler below accepted: one greeting per socket it took over. */
const greeted: string[] = [];

beforeAll(async () => {
  stub = await startStubIssuer(() => clock);
  const tessera = createTessera({
    issuer: stub.issuer,
    clientId: stub.clientId,
    clientSecret: stub.clientSecret,
    appSecret: randomBytes(32),
    redirectUri: "http://127.0.0.1/auth/callback",
    cookies: { secure: false, prefix: "node" },
    now: () => clock,
  });
  const auth = tesseraMiddleware(tessera);
  const guardAdmin = requirePermission("admin");
  server = createServer((req: TesseraRequest, res) =>
    auth(req, res, (error) => {
      if (error) {
        res.statusCode = 500;
        return res.end();
      }
      if (req.url === "/me") return requireUser(req, res, () => res.end(JSON.stringify({ id: req.user?.id })));
      if (req.url === "/admin") return guardAdmin(req, res, () => res.end("ok"));
      res.end("public");
    }),
  );
  // A WebSocket endpoint written as a new integrator would: the guard's answer is the user, used straight away.
  server.on("upgrade", async (req, socket) => {
    const user = await authenticateUpgrade(tessera, req, socket);
    if (!user) return;
    greeted.push(`hello ${user.name}`);
    socket.end(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nhello ${user.name}`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

/** Opens a WebSocket-style upgrade; resolves the refusal (status, headers, JSON body) or the 101 and what followed. */
function upgrade(
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/ws`, { headers: { connection: "Upgrade", upgrade: "websocket", ...headers } });
    req.on("upgrade", (res, socket, head) => {
      const chunks: Buffer[] = [head];
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await stub.close();
});

describe("Node http / Express-style middleware", () => {
  it("signs in through its routes, authenticates, guards, and receives back-channel logouts", async () => {
    const jar = new Map<string, string>();
    const login = await fetch(`${base}/auth/login?returnTo=/me`, { redirect: "manual" });
    expect(login.status).toBe(302);
    cookieHeader(login.headers.getSetCookie(), jar);
    const query = stub.authorize(String(login.headers.get("location")));
    const callback = await fetch(`${base}/auth/callback?${query}`, {
      redirect: "manual",
      headers: { cookie: cookieHeader([], jar) },
    });
    expect(callback.status).toBe(303);
    expect(callback.headers.get("location")).toBe("/me");
    cookieHeader(callback.headers.getSetCookie(), jar);

    const anonymous = await fetch(`${base}/me`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ code: "UNAUTHENTICATED", message: "Sign-in required." });
    const me = await fetch(`${base}/me`, { headers: { cookie: cookieHeader([], jar) } });
    expect(me.status).toBe(200);
    expect(await me.json()).toEqual({ id: "user-1" });
    const admin = await fetch(`${base}/admin`, { headers: { cookie: cookieHeader([], jar) } });
    expect(admin.status).toBe(403);
    // An expired access JWT is renewed on the way; the response carrying the new refresh token is never cacheable.
    clock += 301_000;
    const renewed = await fetch(`${base}/me`, { headers: { cookie: cookieHeader([], jar) } });
    expect(renewed.status).toBe(200);
    expect(renewed.headers.get("cache-control")).toBe("no-store");
    expect(renewed.headers.getSetCookie().map((c) => c.split("=")[0])).toEqual(["node-at", "node-rt", "node-idt"]);
    cookieHeader(renewed.headers.getSetCookie(), jar);

    const csrf = await fetch(`${base}/auth/logout`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: cookieHeader([], jar), origin: "https://evil.example" },
    });
    expect(csrf.status).toBe(403);
    expect(await csrf.json()).toEqual({
      code: "CROSS_ORIGIN_REQUEST",
      message: "This request came from another site.",
    });
    expect(csrf.headers.getSetCookie()).toEqual([]);

    const iat = Math.floor(clock / 1000);
    const logoutToken = await stub.sign(
      {
        iss: stub.issuer,
        aud: stub.clientId,
        sub: "user-1",
        sid: "sid-1",
        iat,
        exp: iat + 120,
        jti: "j2",
        events: { "http://schemas.openid.net/event/backchannel-logout": {} },
      },
      { typ: "logout+jwt" },
    );
    const bc = await fetch(`${base}/auth/backchannel-logout`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ logout_token: logoutToken }),
    });
    expect(bc.status).toBe(200);
    const after = await fetch(`${base}/me`, { headers: { cookie: cookieHeader([], jar) } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { code: string }).code).toBe("SESSION_REVOKED");
  });

  it("authenticateUpgrade refuses an anonymous WebSocket upgrade itself (401 on the socket); the app never sees it", async () => {
    greeted.length = 0;
    const anonymous = await upgrade({});
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["cache-control"]).toBe("no-store");
    expect(anonymous.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(anonymous.body)).toEqual({ code: "UNAUTHENTICATED", message: "Sign-in required." });
    const tampered = await upgrade({ cookie: "node-at=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.forged" });
    expect(tampered.status).toBe(401);
    expect(JSON.parse(tampered.body).code).toBe("ACCESS_TOKEN_INVALID");
    expect(greeted).toEqual([]);

    stub.sid = "sid-ws"; // the first test's back-channel logout ended sid-1
    const jar = new Map<string, string>();
    const login = await fetch(`${base}/auth/login`, { redirect: "manual" });
    cookieHeader(login.headers.getSetCookie(), jar);
    const query = stub.authorize(String(login.headers.get("location")));
    const callback = await fetch(`${base}/auth/callback?${query}`, {
      redirect: "manual",
      headers: { cookie: cookieHeader([], jar) },
    });
    cookieHeader(callback.headers.getSetCookie(), jar);
    stub.sid = "sid-1";
    // Another site's page opening a socket with the user's cookies (cross-site WebSocket hijacking): 403.
    const foreign = await upgrade({ cookie: cookieHeader([], jar), origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body)).toEqual({
      code: "CROSS_ORIGIN_REQUEST",
      message: "This request came from another site.",
    });
    expect(greeted).toEqual([]);
    const own = await upgrade({ cookie: cookieHeader([], jar), origin: "http://127.0.0.1" });
    expect(own.status).toBe(101);
    expect(own.body).toBe("hello Ada");
    expect(greeted).toEqual(["hello Ada"]);
  });

  it("answers 503 ISSUER_UNAVAILABLE (not the app's 500) when Tessera cannot be reached at sign-in", async () => {
    const down = tesseraMiddleware(
      createTessera({
        issuer: "http://127.0.0.1:9",
        clientId: "c",
        clientSecret: "s",
        appSecret: randomBytes(32),
        redirectUri: "http://127.0.0.1/auth/callback",
        cookies: { secure: false },
        httpTimeoutMs: 1000,
      }),
    );
    const app = createServer((req, res) =>
      down(req, res, () => {
        res.statusCode = 500;
        res.end("app error handler");
      }),
    );
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(app.address() as AddressInfo).port}/auth/login`, {
        redirect: "manual",
      });
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        code: "ISSUER_UNAVAILABLE",
        message: "The identity provider is unavailable.",
      });
    } finally {
      await new Promise((resolve) => app.close(resolve));
    }
  });
});
