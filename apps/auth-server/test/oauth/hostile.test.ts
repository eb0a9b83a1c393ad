import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basic, buildOAuthApp, createUser, registerClient, sessionCookie, tokensFor } from "./helpers.ts";

/**
 * Shared state of a describe block, built once. The setup runs without a timeout (how fast a loaded machine builds
 * an app proves nothing), and its failure is never silent: every test awaits the fixture and fails with the setup's
 * own error instead of being counted as skipped. Teardown closes only what was built.
 */
function sharedFixture<T>(setup: () => Promise<T>, teardown: (value: T) => Promise<void>): () => Promise<T> {
  let built: Promise<T> | undefined;
  const fixture = () => {
    built ??= setup();
    return built;
  };
  beforeAll(async () => {
    // Errors surface in every test through fixture(); swallowing here keeps vitest from marking the tests skipped.
    await fixture().catch(() => undefined);
  }, 0);
  afterAll(async () => {
    const value = await built?.catch(() => undefined);
    if (value !== undefined) await teardown(value);
  }, 0);
  return fixture;
}

/** Every OAuth endpoint against junk: each answer is a 4xx with a protocol error, never a 500 or a stack trace. */
const hostile = sharedFixture(
  async () => {
    const t = await buildOAuthApp();
    try {
      const client = await registerClient(t.app);
      const { cookie } = await sessionCookie(t.app, await createUser(t.app));
      return { t, client, tokens: await tokensFor(t.app, client, cookie) };
    } catch (error) {
      await t.close();
      throw error;
    }
  },
  async ({ t }) => t.close(),
);

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
        const { t, client } = await hostile();
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
        const { t } = await hostile();
        const response = await t.app.inject({ method, url });
        expect(response.statusCode).toBe(405);
        expect(response.headers.allow).toBeTruthy();
      });
    }
  }

  it("control characters in a GET parameter are refused before any lookup", async () => {
    const { t } = await hostile();
    const response = await t.app.inject({ method: "GET", url: "/authorize?client_id=%00abc&redirect_uri=x" });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain("The client_id parameter contains invalid characters.");
  });

  it("GET with junk query strings", async () => {
    const { t } = await hostile();
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
    const { t, tokens } = await hostile();
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
  const limited = sharedFixture(
    () => buildOAuthApp({ RATE_LIMIT_TOKEN: "3/60" }),
    (app) => app.close(),
  );

  it("/token answers 429 slow_down with Retry-After over its limit", async () => {
    const { app, clock } = await limited();
    const send = () =>
      app.inject({
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
    clock.advance(61);
    expect((await send()).statusCode).toBe(401);
  });
});
