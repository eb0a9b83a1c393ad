import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cookieHeader, type StubIssuer, startStubIssuer } from "../../../packages/sdk/test/stub-issuer.ts";
import { buildDemoGame, SESSION_ENDED_CLOSE_CODE } from "../src/app.ts";

/**
 * The game's WebSocket channel: the upgrade is authenticated from the game's cookies (or a bearer access JWT), an
 * anonymous upgrade is refused with 401 before any socket exists, and a back-channel logout closes the session's
 * sockets. Tessera is played by the SDK's OIDC stub issuer on 127.0.0.1.
 */
let stub: StubIssuer;
let game: FastifyInstance;

beforeAll(async () => {
  stub = await startStubIssuer(Date.now);
  game = await buildDemoGame({
    issuer: stub.issuer,
    clientId: stub.clientId,
    clientSecret: stub.clientSecret,
    appSecret: randomBytes(32).toString("base64url"),
    publicUrl: "http://127.0.0.1:4002",
  });
  await game.ready();
});
afterAll(async () => {
  await game.close();
  await stub.close();
});

async function signIn(): Promise<Map<string, string>> {
  const jar = new Map<string, string>();
  const login = await game.inject({ method: "GET", url: "/auth/login?returnTo=/" });
  cookieHeader(([] as string[]).concat(login.headers["set-cookie"] ?? []), jar);
  const query = stub.authorize(String(login.headers.location));
  const callback = await game.inject({
    method: "GET",
    url: `/auth/callback?${query}`,
    headers: { cookie: cookieHeader([], jar) },
  });
  expect(callback.statusCode).toBe(303);
  cookieHeader(([] as string[]).concat(callback.headers["set-cookie"] ?? []), jar);
  return jar;
}

type Socket = import("@fastify/websocket").WebSocket;
const firstMessages = new WeakMap<Socket, Promise<Record<string, unknown>>>();

/** Opens a socket, listening from its first moment (the server greets at once, before injectWS resolves). */
function connect(headers: Record<string, string> = {}): Promise<Socket> {
  return game.injectWS(
    "/ws",
    { headers },
    {
      onInit: (socket) => {
        firstMessages.set(
          socket,
          new Promise((resolve) => socket.once("message", (data: Buffer) => resolve(JSON.parse(String(data))))),
        );
      },
    },
  );
}

function nextMessage(socket: Socket): Promise<Record<string, unknown>> | undefined {
  return firstMessages.get(socket);
}

describe("demo-game page", () => {
  it("sends an anonymous visitor on one silent sign-in check (prompt=none), then shows the signed-out page", async () => {
    const first = await game.inject({ method: "GET", url: "/" });
    expect(first.statusCode).toBe(302);
    expect(first.headers.location).toBe("/auth/login?prompt=none&returnTo=/");
    expect(first.headers["set-cookie"]).toBe("game-sso-checked=1; Max-Age=30; Path=/; HttpOnly; SameSite=Lax");
    const login = await game.inject({ method: "GET", url: "/auth/login?prompt=none&returnTo=/" });
    expect(new URL(String(login.headers.location)).searchParams.get("prompt")).toBe("none");
    const again = await game.inject({ method: "GET", url: "/", headers: { cookie: "game-sso-checked=1" } });
    expect(again.statusCode).toBe(200);
    expect(again.body).toContain('<p data-testid="status">Signed out</p>');
  });
});

describe("demo-game WebSocket channel", () => {
  it("refuses an anonymous upgrade with 401 (no socket is opened)", async () => {
    await expect(connect()).rejects.toThrow(/401/);
  });

  it("accepts the game's cookies, and the access JWT as a bearer token", async () => {
    const jar = await signIn();
    const socket = await connect({ cookie: cookieHeader([], jar) });
    expect(await nextMessage(socket)).toEqual({ type: "welcome", name: "Ada" });
    socket.terminate();
    const bearer = await connect({ authorization: `Bearer ${jar.get("game-at")}` });
    expect(await nextMessage(bearer)).toEqual({ type: "welcome", name: "Ada" });
    bearer.terminate();
  });

  it("refuses an upgrade with the game's cookies from a page of another origin, e.g. the shop's port", async () => {
    const jar = await signIn();
    await expect(connect({ cookie: cookieHeader([], jar), origin: "http://127.0.0.1:4001" })).rejects.toThrow(/403/);
    const own = await connect({ cookie: cookieHeader([], jar), origin: "http://127.0.0.1:4002" });
    expect(await nextMessage(own)).toEqual({ type: "welcome", name: "Ada" });
    own.terminate();
  });

  it("refuses a tampered access cookie", async () => {
    const jar = await signIn();
    const jwt = jar.get("game-at") ?? "";
    const tampered = `game-at=${jwt.slice(0, 30)}${jwt[30] === "A" ? "B" : "A"}${jwt.slice(31)}`;
    await expect(connect({ cookie: tampered })).rejects.toThrow(/401/);
  });

  it("closes the session's sockets when Tessera's back-channel logout arrives", async () => {
    stub.sid = "sid-game";
    const jar = await signIn();
    const socket = await connect({ cookie: cookieHeader([], jar) });
    await nextMessage(socket);
    const closed = new Promise<number>((resolve) => socket.once("close", (code: number) => resolve(code)));
    const iat = Math.floor(Date.now() / 1000);
    const logoutToken = await stub.sign(
      {
        iss: stub.issuer,
        aud: stub.clientId,
        sub: "user-1",
        sid: "sid-game",
        iat,
        exp: iat + 120,
        jti: "game-1",
        events: { "http://schemas.openid.net/event/backchannel-logout": {} },
      },
      { typ: "logout+jwt" },
    );
    const response = await game.inject({
      method: "POST",
      url: "/auth/backchannel-logout",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams({ logout_token: logoutToken }).toString(),
    });
    expect(response.statusCode).toBe(200);
    expect(await closed).toBe(SESSION_ENDED_CLOSE_CODE);
    // And the session cannot open a new one.
    await expect(connect({ cookie: cookieHeader([], jar) })).rejects.toThrow(/401/);
    stub.sid = "sid-1";
  });
});
