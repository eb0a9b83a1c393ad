/**
 * The framework-neutral core on its own: a third adapter, for fetch-style `Request` → `Response` servers, written in
 * the ~20 lines the README's "Other frameworks" section promises, signs a user in, guards a route and signs out.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  authHeaders,
  authInputFrom,
  checkAccess,
  createHandler,
  createTessera,
  type HandlerResponse,
  type TesseraClient,
  type TesseraUser,
} from "../src/index.ts";
import { cookieHeader, type StubIssuer, startStubIssuer } from "./stub-issuer.ts";

const clock = Date.UTC(2026, 10, 21, 12, 0, 0);
let stub: StubIssuer;
let tessera: TesseraClient;
let serve: (request: Request) => Promise<Response>;

function toResponse({ status, headers, body }: HandlerResponse): Response {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) for (const one of [value].flat()) out.append(name, one);
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: out });
}

/** The whole adapter: routes through the handler, everything else authenticated, guarded, and given its cookies. */
function fetchAdapter(client: TesseraClient, app: (user: TesseraUser) => Response) {
  const handler = createHandler(client);
  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const headers = Object.fromEntries(request.headers);
    const route = handler.match(request.method, url.pathname);
    if (route) {
      const form = route === "backchannelLogout" ? Object.fromEntries(new URLSearchParams(await request.text())) : {};
      return toResponse(await handler.handle(route, { url: url.pathname + url.search, headers, form }));
    }
    const result = await client.authenticate(authInputFrom(headers));
    const refusal = checkAccess(result.user, result.error); // undefined only with a user
    const response = refusal ? toResponse(refusal) : app(result.user as TesseraUser);
    const extra = authHeaders(result);
    if (extra) for (const cookie of extra["set-cookie"]) response.headers.append("set-cookie", cookie);
    if (extra) response.headers.set("cache-control", extra["cache-control"]);
    return response;
  };
}

beforeAll(async () => {
  stub = await startStubIssuer(() => clock);
  tessera = createTessera({
    issuer: stub.issuer,
    clientId: stub.clientId,
    clientSecret: stub.clientSecret,
    appSecret: randomBytes(32),
    redirectUri: "https://shop.example/auth/callback",
    postLogoutRedirectUri: "https://shop.example/",
    cookies: { secure: true, prefix: "edge" },
    now: () => clock,
  });
  serve = fetchAdapter(tessera, (user) => Response.json({ id: user.id, email: user.email }));
});
afterAll(async () => stub.close());

const at = (path: string, init: RequestInit = {}) => serve(new Request(`https://shop.example${path}`, init));

async function signIn(loginPath: string) {
  const jar = new Map<string, string>();
  const login = await at(loginPath);
  expect(login.status).toBe(302);
  expect(login.headers.get("cache-control")).toBe("no-store");
  cookieHeader(login.headers.getSetCookie(), jar);
  const query = stub.authorize(String(login.headers.get("location")));
  const callback = await at(`/auth/callback?${query}`, { headers: { cookie: cookieHeader([], jar) } });
  cookieHeader(callback.headers.getSetCookie(), jar);
  return { callback, jar };
}

describe("the neutral handler behind a fetch-style adapter", () => {
  it("signs in, guards, and signs out with the same answers as the Fastify and Node adapters", async () => {
    const anonymous = await at("/api/me");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("cache-control")).toBe("no-store");
    expect(await anonymous.json()).toEqual({ code: "UNAUTHENTICATED", message: "Sign-in required." });

    const { callback, jar } = await signIn("/auth/login?returnTo=%2Fcart");
    expect(callback.status).toBe(303);
    expect(callback.headers.get("location")).toBe("/cart");
    expect(callback.headers.getSetCookie().map((c) => c.split("=")[0])).toEqual([
      "__Host-edge-at",
      "__Host-edge-rt",
      "__Host-edge-idt",
      "__Host-edge-tx",
    ]);
    const me = await at("/api/me", { headers: { cookie: cookieHeader([], jar) } });
    expect(me.status).toBe(200);
    expect(await me.json()).toEqual({ id: "user-1", email: "ada@example.com" });

    const csrf = await at("/auth/logout", {
      method: "POST",
      headers: { cookie: cookieHeader([], jar), origin: "https://evil.example" },
    });
    expect(csrf.status).toBe(403);
    expect(await csrf.json()).toEqual({
      code: "CROSS_ORIGIN_REQUEST",
      message: "This request came from another site.",
    });
    const out = await at("/auth/logout", {
      method: "POST",
      headers: { cookie: cookieHeader([], jar), origin: "https://shop.example" },
    });
    expect(out.status).toBe(303);
    expect(new URL(String(out.headers.get("location"))).pathname).toBe("/logout");
    expect(out.headers.getSetCookie().map((c) => /^([^=]+)=; Max-Age=0;/.exec(c)?.[1] ?? `not cleared: ${c}`)).toEqual([
      "__Host-edge-at",
      "__Host-edge-rt",
      "__Host-edge-idt",
      "__Host-edge-tx",
    ]);
  });

  it("a route path with another method is no route: it is authenticated and passed on to the app", async () => {
    const handler = createHandler(tessera);
    expect(handler.match("POST", "/auth/logout")).toBe("logout");
    expect(handler.match("GET", "/auth/logout")).toBeUndefined();
    expect(handler.match("GET", "/auth/login")).toBe("login");
    expect(createHandler(tessera, { routes: false }).match("GET", "/auth/login")).toBeUndefined();
    stub.sid = "sid-get"; // the first test signed sid-1 out
    const { jar } = await signIn("/auth/login");
    stub.sid = "sid-1";
    const get = await at("/auth/logout", { headers: { cookie: cookieHeader([], jar) } });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ id: "user-1", email: "ada@example.com" });
  });

  it("a repeated returnTo is ignored (the sign-in continues at /), not resolved to one of its values", async () => {
    const { callback } = await signIn("/auth/login?returnTo=%2Fcart&returnTo=%2F%2Fevil.example");
    expect(callback.headers.get("location")).toBe("/");
  });
});
