import { webhookDeliveries } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMetricsServer } from "../../src/http/metrics.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser, refresh, registerClient, sessionCookie, tokensFor } from "../oauth/helpers.ts";

const TOKEN = "metrics-token-0123456789abcdef";
const PASSWORD = "correct horse battery staple";

/** The value of one sample line (`name{labels} value`), 0 when the series does not exist yet. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ METRICS_TOKEN: TOKEN });
}, 0);
afterAll(async () => t?.close());

const scrape = async () => {
  const res = await t.app.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.statusCode).toBe(200);
  return res.body;
};

describe("/metrics behind METRICS_TOKEN", () => {
  it("refuses a missing or wrong token with 401 METRICS_TOKEN_REQUIRED", async () => {
    for (const authorization of [undefined, "Bearer wrong-token-0123456789abcdef", `Basic ${TOKEN}`, TOKEN]) {
      const res = await t.app.inject({
        method: "GET",
        url: "/metrics",
        headers: authorization ? { authorization } : {},
      });
      expect(res.statusCode).toBe(401);
      expect(res.headers["www-authenticate"]).toBe('Bearer realm="metrics"');
      expect(res.json()).toMatchObject({ error: { code: "METRICS_TOKEN_REQUIRED" } });
      expect(res.body).not.toContain("tessera_");
    }
  });

  it("answers the Prometheus text format with the default and Tessera metrics", async () => {
    const res = await t.app.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    for (const name of [
      "tessera_http_request_duration_seconds",
      "tessera_sign_ins_total",
      "tessera_sign_in_failures_total",
      "tessera_token_refreshes_total",
      "tessera_refresh_token_reuse_detected_total",
      "tessera_active_sessions",
      "tessera_backchannel_queue_depth",
      "tessera_backchannel_queue_oldest_age_seconds",
      "tessera_webhook_queue_depth",
      "tessera_webhook_queue_oldest_age_seconds",
      "tessera_webhook_dead_letters",
      "tessera_nodejs_eventloop_lag_seconds",
    ]) {
      expect(res.body).toMatch(new RegExp(`^# TYPE ${name} `, "m"));
    }
  });

  it("counts requests by route template and status, with latency buckets", async () => {
    const series = 'tessera_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}';
    const before = sample(await scrape(), series);
    await t.app.inject({ method: "GET", url: "/healthz" });
    await t.app.inject({ method: "GET", url: "/healthz?x=1" });
    const text = await scrape();
    expect(sample(text, series)).toBe(before + 2);
    expect(text).toContain(
      'tessera_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz",status="200"}',
    );
    await t.app.inject({ method: "GET", url: "/no/such/page/123" });
    const after = await scrape();
    expect(after).toContain('route="(unmatched)",status="404"');
    expect(after).not.toContain("/no/such/page/123");
  });

  it("counts sign-ins and failures by method, refreshes, reuse detections and active sessions", async () => {
    const user = await createUser(t.app, { password: PASSWORD });
    const before = await scrape();
    const ok = 'tessera_sign_ins_total{method="password"}';
    const failed = 'tessera_sign_in_failures_total{method="password",reason="INVALID_CREDENTIALS"}';
    const login = (password: string) =>
      t.app.inject({
        method: "POST",
        url: "/api/v1/login",
        headers: { "content-type": "application/json" },
        payload: JSON.stringify({ email: user.email, password }),
      });
    expect((await login(PASSWORD)).statusCode).toBe(200);
    expect((await login("wrong password!")).statusCode).toBe(401);

    const client = await registerClient(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const tokens = await tokensFor(t.app, client, cookie);
    expect((await refresh(t.app, client, tokens.refresh_token)).statusCode).toBe(200);
    t.clock.advance(60); // past the grace window: presenting the old token again is reuse
    expect((await refresh(t.app, client, tokens.refresh_token)).statusCode).toBe(400);

    const after = await scrape();
    expect(sample(after, ok)).toBe(sample(before, ok) + 1);
    expect(sample(after, failed)).toBe(sample(before, failed) + 1);
    expect(sample(after, "tessera_token_refreshes_total")).toBe(sample(before, "tessera_token_refreshes_total") + 1);
    const reuse = "tessera_refresh_token_reuse_detected_total";
    expect(sample(after, reuse)).toBe(sample(before, reuse) + 1);
  });

  it("reads active sessions from the database, cached a few seconds", async () => {
    // The cache is keyed on wall time; wait it out so this scrape reads the rows written above.
    await new Promise((r) => setTimeout(r, 5100));
    const first = sample(await scrape(), "tessera_active_sessions");
    const user = await createUser(t.app);
    await sessionCookie(t.app, user);
    expect(sample(await scrape(), "tessera_active_sessions")).toBe(first); // cached
    await new Promise((r) => setTimeout(r, 5100));
    expect(sample(await scrape(), "tessera_active_sessions")).toBe(first + 1);
  }, 20_000);

  it("reads the webhook queue: waiting deliveries, the oldest one's age, and dead letters", async () => {
    const { client } = await registerClient(t.app, { name: "Hooked" });
    const now = t.clock.now();
    const row = { clientId: client.id, userId: client.id, eventType: "user.updated", payload: {} };
    await t.app.ctx.db.insert(webhookDeliveries).values([
      { ...row, createdAt: new Date(now.getTime() - 120_000) },
      { ...row, createdAt: now },
      { ...row, createdAt: now, deliveredAt: now },
      { ...row, createdAt: now, deadAt: now },
    ]);
    await new Promise((r) => setTimeout(r, 5100)); // past the scrape cache
    const text = await scrape();
    expect(sample(text, "tessera_webhook_queue_depth")).toBe(2);
    expect(sample(text, "tessera_webhook_queue_oldest_age_seconds")).toBeGreaterThanOrEqual(120);
    expect(sample(text, "tessera_webhook_dead_letters")).toBe(1);
  }, 20_000);
});

describe("metrics switched off or on a separate port", () => {
  it("is a 404 without METRICS_TOKEN and METRICS_PORT", async () => {
    const off = await buildTestApp();
    try {
      const res = await off.app.inject({ method: "GET", url: "/metrics" });
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain("tessera_");
    } finally {
      await off.close();
    }
  });

  it("with METRICS_PORT only, serves /metrics on its own listener and not on the main port", async () => {
    const separate = await buildTestApp({ METRICS_PORT: "9464" });
    try {
      expect((await separate.app.inject({ method: "GET", url: "/metrics" })).statusCode).toBe(404);
      const server = await startMetricsServer(separate.app, 0, "127.0.0.1");
      const { port } = server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^# TYPE tessera_active_sessions gauge$/m);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
      server.close();
    } finally {
      await separate.close();
    }
  });
});
