import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cookieHeader, type StubIssuer, startStubIssuer } from "../../../packages/sdk/test/stub-issuer.ts";
import { buildDemoWeb } from "../src/app.ts";

/** The demo shop as a Tessera client: its pages' headers and its one form. Tessera is the SDK's stub issuer. */
let stub: StubIssuer;
let shop: FastifyInstance;

beforeAll(async () => {
  stub = await startStubIssuer(Date.now);
  shop = await buildDemoWeb({
    issuer: stub.issuer,
    clientId: stub.clientId,
    clientSecret: stub.clientSecret,
    appSecret: randomBytes(32).toString("base64url"),
    publicUrl: "http://127.0.0.1:4001",
    gameUrl: "http://127.0.0.1:4002",
  });
  await shop.ready();
});
afterAll(async () => {
  await shop.close();
  await stub.close();
});

async function signIn(): Promise<string> {
  const jar = new Map<string, string>();
  const login = await shop.inject({ method: "GET", url: "/auth/login?returnTo=/" });
  cookieHeader(([] as string[]).concat(login.headers["set-cookie"] ?? []), jar);
  const query = stub.authorize(String(login.headers.location));
  const callback = await shop.inject({
    method: "GET",
    url: `/auth/callback?${query}`,
    headers: { cookie: cookieHeader([], jar) },
  });
  expect(callback.statusCode).toBe(303);
  return cookieHeader(([] as string[]).concat(callback.headers["set-cookie"] ?? []), jar);
}

describe("demo shop", () => {
  it("serves its pages with CSP frame-ancestors 'none', nosniff, a referrer policy and no-store", async () => {
    const home = await shop.inject({ method: "GET", url: "/" });
    expect(home.statusCode).toBe(200);
    expect(home.headers["content-security-policy"]).toBe(
      "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    );
    expect(home.headers["x-content-type-options"]).toBe("nosniff");
    expect(home.headers["referrer-policy"]).toBe("same-origin");
    expect(home.headers["cache-control"]).toBe("no-store");
  });

  it("the cart form refuses a post from another origin (the game's port: same site, so the cookies come along)", async () => {
    const cookie = await signIn();
    const post = (origin: string) =>
      shop.inject({
        method: "POST",
        url: "/cart",
        headers: { cookie, origin, "content-type": "application/x-www-form-urlencoded" },
        payload: "product=sword",
      });
    const foreign = await post("http://127.0.0.1:4002");
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json()).toEqual({ code: "CROSS_ORIGIN_REQUEST", message: "This request came from another site." });
    expect((await shop.inject({ method: "GET", url: "/", headers: { cookie } })).body).toContain("Cart: 0 item(s)");
    const own = await post("http://127.0.0.1:4001");
    expect(own.statusCode).toBe(303);
    expect((await shop.inject({ method: "GET", url: "/", headers: { cookie } })).body).toContain("Cart: 1 item(s)");
  });
});
