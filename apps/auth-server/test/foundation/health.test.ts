import { createServer, Socket as NetSocket, type Server, type Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { build } from "../contract.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

describe("health and readiness", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  it("GET /healthz answers 200 while the process is up", async () => {
    const res = await t.app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
    expect(res.headers["cache-control"]).toBe("no-store");
  });

  it("GET /readyz answers 200 when the database is reachable and migrated", async () => {
    const res = await t.app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ready", database: t.app.database.kind });
  });

  it("sends a request id, echoing a well-formed incoming one and replacing a hostile one", async () => {
    const echoed = await t.app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "abc-123" } });
    expect(echoed.headers["x-request-id"]).toBe("abc-123");
    const replaced = await t.app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "<script>\n" } });
    expect(replaced.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("sends security headers on every response", async () => {
    const res = await t.app.inject({ method: "GET", url: "/healthz" });
    expect(res.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
    expect(res.headers["x-frame-options"]).toBe("DENY");
    // Served over http here: no HSTS.
    expect(res.headers["strict-transport-security"]).toBeUndefined();
  });

  it("sends the same full set on a 404, an error and a cacheable document, no-store unless the route says otherwise", async () => {
    const expected = {
      "content-security-policy":
        "default-src 'self';base-uri 'none';object-src 'none';frame-ancestors 'none';img-src 'self' https: data:;style-src 'self';script-src 'self'",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-resource-policy": "same-origin",
      "origin-agent-cluster": "?1",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
      "x-dns-prefetch-control": "off",
      "x-download-options": "noopen",
      "x-frame-options": "DENY",
      "x-permitted-cross-domain-policies": "none",
      "x-xss-protection": "0",
    };
    const security = (headers: Record<string, unknown>) =>
      Object.fromEntries(Object.keys(expected).map((name) => [name, headers[name]]));
    for (const [url, cacheControl] of [
      ["/healthz", "no-store"],
      ["/no-such-page", "no-store"],
      ["/.well-known/openid-configuration", "public, max-age=3600"],
    ] as const) {
      const res = await t.app.inject({ method: "GET", url });
      expect(security(res.headers), url).toEqual(expected);
      expect(res.headers["cache-control"], url).toBe(cacheControl);
      expect(res.headers["x-powered-by"]).toBeUndefined();
    }
    // A malformed URL is answered by the framework before any hook runs: the same set.
    const malformed = await t.app.inject({ method: "GET", url: "/%%" });
    expect(malformed.statusCode).toBe(404);
    expect(security(malformed.headers)).toEqual(expected);
    expect(malformed.headers["cache-control"]).toBe("no-store");
    const failed = await t.app.inject({ method: "POST", url: "/token" });
    expect(failed.statusCode).toBe(400);
    expect(security(failed.headers)).toEqual(expected);
    expect(failed.headers["cache-control"]).toBe("no-store");
  });

  it("sends HSTS when the issuer is served over https", async () => {
    const secure = await buildTestApp({ ISSUER: "https://id.example.test" });
    try {
      const res = await secure.app.inject({ method: "GET", url: "/healthz" });
      expect(res.headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    } finally {
      await secure.close();
    }
  });
});

describe("error shape", () => {
  let t: TestApp;
  beforeAll(async () => {
    // A JSON route registered the way feature routes are, to exercise body parsing before any handler runs.
    t = await buildTestApp({}, (app) => {
      app.post("/test/echo", async (request) => ({ received: request.body }));
    });
  });
  afterAll(() => t.close());

  it("accepts a well-formed body on the same route", async () => {
    const res = await t.app.inject({ method: "POST", url: "/test/echo", payload: { a: 1 } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ received: { a: 1 } });
  });

  it("answers unknown routes with NOT_FOUND in the catalog shape", async () => {
    const res = await t.app.inject({ method: "GET", url: "/no/such/route", headers: { "x-request-id": "rid-1" } });
    expect(res.statusCode).toBe(404);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.json()).toEqual({
      error: { code: "NOT_FOUND", message: "Nothing is here.", status: 404, requestId: "rid-1" },
    });
  });

  it("answers malformed JSON with MALFORMED_BODY and no stack trace", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: "/test/echo",
      headers: { "content-type": "application/json", "x-request-id": "rid-2" },
      payload: '{"email": "a@b.c",',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: {
        code: "MALFORMED_BODY",
        message: "The request body could not be parsed.",
        status: 400,
        requestId: "rid-2",
      },
    });
    expect(res.body).not.toMatch(/at .*\.ts:\d+/);
  });

  it("answers an unknown content type with UNSUPPORTED_MEDIA_TYPE", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: "/test/echo",
      headers: { "content-type": "application/x-evil" },
      payload: "x",
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
  });

  it("answers an oversized body with PAYLOAD_TOO_LARGE", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: "/test/echo",
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({ pad: "x".repeat(1024 * 1024) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe("PAYLOAD_TOO_LARGE");
  });
});

describe("readiness when the database is down", () => {
  it("answers 503 DATABASE_UNAVAILABLE and keeps serving /healthz", async () => {
    // Port 9 (discard) on loopback has no PostgreSQL: connections are refused.
    const app = await build(testConfig({ DATABASE_URL: "postgres://tessera@127.0.0.1:9/tessera" }));
    try {
      const ready = await app.inject({ method: "GET", url: "/readyz" });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().error).toMatchObject({ code: "DATABASE_UNAVAILABLE", status: 503 });
      expect(ready.body).not.toContain("127.0.0.1:9");
      expect((await app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

/** A TCP proxy in front of PostgreSQL that the test can cut and restore, to take the database away and back. */
async function startProxy(target: URL, port = 0): Promise<{ server: Server; port: number; cut(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = new NetSocket();
    upstream.connect(Number(target.port || 5432), target.hostname);
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address();
  return {
    server,
    port: typeof address === "object" && address ? address.port : port,
    async cut() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.runIf(process.env.TEST_DATABASE_URL)("readiness recovers when PostgreSQL comes back", () => {
  let app: FastifyInstance;
  it("goes 200 → 503 → 200 without a restart", async () => {
    const target = new URL(process.env.TEST_DATABASE_URL as string);
    const first = await startProxy(target);
    const url = new URL(target);
    url.hostname = "127.0.0.1";
    url.port = String(first.port);
    app = await build(testConfig({ DATABASE_URL: url.toString() }));
    try {
      expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
      await first.cut();
      const down = await app.inject({ method: "GET", url: "/readyz" });
      expect(down.statusCode).toBe(503);
      expect(down.json().error.code).toBe("DATABASE_UNAVAILABLE");
      const second = await startProxy(target, first.port);
      try {
        expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
      } finally {
        await second.cut();
      }
    } finally {
      await app.close();
    }
  });
});
