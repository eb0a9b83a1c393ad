import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApp } from "../helpers.ts";
import {
  basic,
  buildOAuthApp,
  createUser,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "./helpers.ts";

/** Every OAuth endpoint against junk: each answer is a 4xx with a protocol error, never a 500 or a stack trace. */
let t: TestApp;
let client: TestClient;
let tokens: Awaited<ReturnType<typeof tokensFor>>;

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app);
  const { cookie } = await sessionCookie(t.app, await createUser(t.app));
  tokens = await tokensFor(t.app, client, cookie);
});
afterAll(async () => t.close());

const ENDPOINTS = [
  "/authorize",
  "/token",
  "/userinfo",
  "/revoke",
  "/introspect",
  "/logout",
  "/api/v1/clients/sessions",
];

const PAYLOADS: Array<{ name: string; type?: string; body?: string }> = [
  { name: "empty form", type: "application/x-www-form-urlencoded", body: "" },
  {
    name: "duplicates",
    type: "application/x-www-form-urlencoded",
    body: "a=1&a=2&client_id=x&client_id=y&token=1&token=2",
  },
  { name: "bad percent-encoding", type: "application/x-www-form-urlencoded", body: "client_id=%E0%A4%A&token=%%" },
  { name: "array syntax", type: "application/x-www-form-urlencoded", body: "client_id[]=x&token[a]=b&grant_type[]=1" },
  { name: "huge value", type: "application/x-www-form-urlencoded", body: `token=${"x".repeat(60_000)}` },
  { name: "over the body limit", type: "application/x-www-form-urlencoded", body: `x=${"y".repeat(70 * 1024)}` },
  { name: "JSON", type: "application/json", body: JSON.stringify({ client_id: ["x"], token: { a: 1 } }) },
  { name: "broken JSON", type: "application/json", body: "{" },
  { name: "text", type: "text/plain", body: "hello" },
  { name: "multipart", type: "multipart/form-data; boundary=x", body: "--x\r\n\r\n--x--" },
  { name: "no content type", body: "token=x" },
  {
    name: "control characters",
    type: "application/x-www-form-urlencoded",
    body: "client_id=%00%01&state=%0D%0ALocation:%20x",
  },
];

describe("hostile input on every endpoint", () => {
  for (const url of ENDPOINTS) {
    for (const payload of PAYLOADS) {
      it(`POST ${url} with ${payload.name}`, async () => {
        const response = await t.app.inject({
          method: "POST",
          url,
          headers: {
            ...(payload.type ? { "content-type": payload.type } : {}),
            authorization: basic(client.clientId, client.secret),
          },
          payload: payload.body,
        });
        expect(response.statusCode).toBeGreaterThanOrEqual(400);
        expect(response.statusCode).toBeLessThan(500);
        expect(response.body).not.toMatch(/at .*\.ts:\d+|stack/i);
        expect(response.headers.location ?? "").not.toMatch(/^https?:\/\/(?!shop\.example)/);
      });
    }
    for (const method of ["PUT", "PATCH", "DELETE"] as const) {
      it(`${method} ${url} → 405 with Allow`, async () => {
        const response = await t.app.inject({ method, url });
        expect(response.statusCode).toBe(405);
        expect(response.headers.allow).toBeTruthy();
      });
    }
  }

  it("control characters in a GET parameter are refused before any lookup", async () => {
    const response = await t.app.inject({ method: "GET", url: "/authorize?client_id=%00abc&redirect_uri=x" });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain("The client_id parameter contains invalid characters.");
  });

  it("GET with junk query strings", async () => {
    for (const url of ["/authorize", "/userinfo", "/logout"]) {
      for (const query of ["?%", "?a=%E0%A4%A", "?client_id[]=1&redirect_uri[x]=2", `?state=${"s".repeat(9000)}`]) {
        const response = await t.app.inject({ method: "GET", url: `${url}${query}` });
        // /logout without a hint ignores unknown parameters and shows its confirmation form (200).
        expect(response.statusCode).toBeGreaterThanOrEqual(url === "/logout" ? 200 : 400);
        expect(response.statusCode).toBeLessThan(500);
      }
    }
  });

  it("odd Authorization headers", async () => {
    const nul = `Basic ${Buffer.from("%00id:secret").toString("base64")}`;
    for (const authorization of [
      nul,
      "Basic",
      "Basic =",
      "Basic Og==",
      "Bearer",
      `Basic ${"A".repeat(5000)}`,
      "Digest x",
    ]) {
      const token = await t.app.inject({
        method: "POST",
        url: "/token",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization },
        payload: "grant_type=refresh_token&refresh_token=tsr_x",
      });
      expect([400, 401]).toContain(token.statusCode);
      const userinfo = await t.app.inject({ method: "GET", url: "/userinfo", headers: { authorization } });
      expect([400, 401]).toContain(userinfo.statusCode);
    }
    // The real token still works.
    const ok = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(ok.statusCode).toBe(200);
  });
});

describe("rate limits", () => {
  it("/token answers 429 slow_down with Retry-After over its limit", async () => {
    const limited = await buildOAuthApp({ RATE_LIMIT_TOKEN: "3/60" });
    try {
      const send = () =>
        limited.app.inject({
          method: "POST",
          url: "/token",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          payload: "grant_type=refresh_token&refresh_token=tsr_x",
        });
      for (let i = 0; i < 3; i++) expect((await send()).statusCode).toBe(401);
      const over = await send();
      expect(over.statusCode).toBe(429);
      expect(over.json().error).toBe("slow_down");
      expect(Number(over.headers["retry-after"])).toBeGreaterThan(0);
      limited.clock.advance(61);
      expect((await send()).statusCode).toBe(401);
    } finally {
      await limited.close();
    }
  });
});
