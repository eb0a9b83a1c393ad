import { randomBytes } from "node:crypto";
import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, testConfig } from "../../src/config/index.ts";
import { routeRateLimit } from "../../src/http/rate-limit.ts";
import { ClockMemoryStore } from "../../src/http/rate-limit-store.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { build } from "../contract.ts";

/**
 * The rate-limit plugin on small routes of its own (the credential routes have their own tests in test/abuse and
 * test/mfa): limits hit and reset with the clock, counts per IP, X-Forwarded-For only through trusted proxies, the
 * three error renderings, and Redis-shared counts across two instances.
 *
 * Nothing here depends on how fast the machine is: windows move with the injected clock (memory store) or are expired
 * in Redis by the test, and the apps are built in hooks (never inside a test's time budget) on one database per file,
 * created once: a migration per app made a loaded 2-core machine time out. A failed setup throws from its hook, which
 * fails every test of the file.
 */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase();
}, 120_000);
afterAll(async () => {
  await database?.close();
});

/** An app on the file's database; apps only write audit rows to it. */
async function appWithRoutes(env: Record<string, string>, clock = new TestClock()) {
  const app = await build(testConfig(env), { database, clock });
  const config = app.ctx.config;
  app.post("/t/json", { config: { rateLimit: routeRateLimit(config, "login") } }, async () => ({ ok: true }));
  app.post("/t/json-twin", { config: { rateLimit: routeRateLimit(config, "login") } }, async () => ({ ok: true }));
  app.post("/t/other", { config: { rateLimit: routeRateLimit(config, "register") } }, async () => ({ ok: true }));
  app.post("/t/oauth", { config: { errorFormat: "oauth", rateLimit: routeRateLimit(config, "token") } }, async () => ({
    ok: true,
  }));
  await app.ready();
  return {
    app,
    clock,
    async close() {
      await app.close();
    },
  };
}

const post = (
  app: FastifyInstance,
  url: string,
  extra: { remoteAddress?: string; headers?: Record<string, string> } = {},
) => app.inject({ method: "POST", url, ...extra });

describe("per-route rate limits (memory store)", () => {
  let t: Awaited<ReturnType<typeof appWithRoutes>>;
  beforeAll(async () => {
    t = await appWithRoutes({ RATE_LIMIT_LOGIN: "3/60", RATE_LIMIT_REGISTER: "1/60", RATE_LIMIT_TOKEN: "1/30" });
  });
  afterAll(async () => t?.close());

  it("allows max requests per window, then answers 429 RATE_LIMITED with Retry-After, and resets after the window", async () => {
    const ip = { remoteAddress: "198.51.100.1" };
    for (let i = 1; i <= 3; i++) {
      const ok = await post(t.app, "/t/json", ip);
      expect(ok.statusCode).toBe(200);
      expect(ok.headers["x-ratelimit-limit"]).toBe("3");
      expect(ok.headers["x-ratelimit-remaining"]).toBe(String(3 - i));
    }
    const limited = await post(t.app, "/t/json", ip);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers["retry-after"]).toBe("60");
    expect(limited.headers["content-type"]).toMatch(/^application\/json/);
    expect(limited.json()).toEqual({
      error: {
        code: "RATE_LIMITED",
        message: "Too many requests. Try again later.",
        status: 429,
        requestId: limited.headers["x-request-id"],
      },
    });

    t.clock.advance(45);
    const stillLimited = await post(t.app, "/t/json", ip);
    expect(stillLimited.statusCode).toBe(429);
    expect(stillLimited.headers["retry-after"]).toBe("15");

    t.clock.advance(15);
    const again = await post(t.app, "/t/json", ip);
    expect(again.statusCode).toBe(200);
    expect(again.headers["x-ratelimit-remaining"]).toBe("2");
  });

  it("counts routes that share a limit name together, and other limits separately", async () => {
    const ip = { remoteAddress: "198.51.100.2" };
    for (let i = 0; i < 3; i++)
      expect((await post(t.app, i % 2 ? "/t/json-twin" : "/t/json", ip)).statusCode).toBe(200);
    expect((await post(t.app, "/t/json-twin", ip)).statusCode).toBe(429);
    expect((await post(t.app, "/t/other", ip)).statusCode).toBe(200);
    expect((await post(t.app, "/t/other", ip)).statusCode).toBe(429);
  });

  it("counts each client IP separately", async () => {
    for (let i = 0; i < 3; i++)
      expect((await post(t.app, "/t/json", { remoteAddress: "198.51.100.3" })).statusCode).toBe(200);
    expect((await post(t.app, "/t/json", { remoteAddress: "198.51.100.3" })).statusCode).toBe(429);
    expect((await post(t.app, "/t/json", { remoteAddress: "198.51.100.4" })).statusCode).toBe(200);
  });

  it("ignores a rotated X-Forwarded-For when no trusted proxy is configured", async () => {
    const from = (n: number) => ({ remoteAddress: "198.51.100.5", headers: { "x-forwarded-for": `203.0.113.${n}` } });
    for (let i = 0; i < 3; i++) expect((await post(t.app, "/t/json", from(i))).statusCode).toBe(200);
    const limited = await post(t.app, "/t/json", from(99));
    expect(limited.statusCode).toBe(429);
  });

  it("answers OAuth routes with slow_down and Retry-After", async () => {
    const ip = { remoteAddress: "198.51.100.6" };
    expect((await post(t.app, "/t/oauth", ip)).statusCode).toBe(200);
    const limited = await post(t.app, "/t/oauth", ip);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers["retry-after"]).toBe("30");
    expect(limited.headers["cache-control"]).toBe("no-store");
    expect(limited.json()).toEqual({ error: "slow_down", error_description: "Too many requests. Try again later." });
  });
});

describe("client IP through trusted proxies", () => {
  let t: Awaited<ReturnType<typeof appWithRoutes>>;
  beforeAll(async () => {
    t = await appWithRoutes({ RATE_LIMIT_LOGIN: "1/60", TRUSTED_PROXIES: "10.0.0.1" });
  });
  afterAll(async () => t?.close());

  it("counts the X-Forwarded-For address when the peer is a trusted proxy", async () => {
    const viaProxy = (client: string) => ({ remoteAddress: "10.0.0.1", headers: { "x-forwarded-for": client } });
    expect((await post(t.app, "/t/json", viaProxy("203.0.113.10"))).statusCode).toBe(200);
    expect((await post(t.app, "/t/json", viaProxy("203.0.113.10"))).statusCode).toBe(429);
    expect((await post(t.app, "/t/json", viaProxy("203.0.113.11"))).statusCode).toBe(200);
  });

  it("takes the address the trusted proxy saw, not what the client wrote before it in X-Forwarded-For", async () => {
    const forged = (left: string) => ({
      remoteAddress: "10.0.0.1",
      headers: { "x-forwarded-for": `${left}, 203.0.113.30` },
    });
    expect((await post(t.app, "/t/json", forged("198.18.0.1"))).statusCode).toBe(200);
    expect((await post(t.app, "/t/json", forged("198.18.0.2"))).statusCode).toBe(429);
  });

  it("refuses a TRUSTED_PROXIES entry that is not an address or range, by name", () => {
    for (const bad of ["garbage", "10.0.0.0/99", "*", "true", "10.0.0.1/8/1"]) {
      expect(() => testConfig({ TRUSTED_PROXIES: `10.0.0.1, ${bad}` })).toThrow(/TRUSTED_PROXIES/);
    }
    expect(testConfig({ TRUSTED_PROXIES: "10.0.0.0/8, ::1, fd00::/8, loopback" }).trustedProxies).toEqual([
      "10.0.0.0/8",
      "::1",
      "fd00::/8",
      "loopback",
    ]);
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    const spoofed = (client: string) => ({ remoteAddress: "198.51.100.20", headers: { "x-forwarded-for": client } });
    expect((await post(t.app, "/t/json", spoofed("203.0.113.20"))).statusCode).toBe(200);
    expect((await post(t.app, "/t/json", spoofed("203.0.113.21"))).statusCode).toBe(429);
  });
});

describe("memory store", () => {
  it("keeps at most its cap of counters under a flood of distinct addresses, dropping the oldest first", () => {
    const clock = new TestClock();
    const store = new ClockMemoryStore(clock, 1000);
    const counts: number[] = [];
    const hit = (key: string) => store.incr(key, (_e, r) => counts.push(r?.current ?? -1), 600_000);
    hit("login:victim-of-nothing");
    for (let i = 0; i < 5000; i++) hit(`login:2001:db8:${i.toString(16)}::`);
    expect(store.size).toBeLessThanOrEqual(1000);
    // The newest counters are still counting; the oldest was dropped and starts over.
    hit("login:2001:db8:1387::");
    expect(counts.at(-1)).toBe(2);
    hit("login:victim-of-nothing");
    expect(counts.at(-1)).toBe(1);
  });
});

describe("rate limit configuration", () => {
  it("rejects a malformed RATE_LIMIT_* value by name", () => {
    expect(() => testConfig({ RATE_LIMIT_LOGIN: "ten per minute" })).toThrow(ConfigError);
    expect(() => testConfig({ RATE_LIMIT_OTP: "5/0" })).toThrow(/RATE_LIMIT_OTP/);
    expect(testConfig({ RATE_LIMIT_OTP: "7/120" }).rateLimits.routes.otp).toEqual({ max: 7, windowSeconds: 120 });
  });
});

describe("RATE_LIMIT_ENABLED=false", () => {
  let t: Awaited<ReturnType<typeof appWithRoutes>>;
  beforeAll(async () => {
    t = await appWithRoutes({ RATE_LIMIT_LOGIN: "1/60", RATE_LIMIT_ENABLED: "false" });
  });
  afterAll(async () => t?.close());

  it("turns the limits off", async () => {
    for (let i = 0; i < 3; i++) expect((await post(t.app, "/t/json")).statusCode).toBe(200);
  });
});

describe("Redis not answering", () => {
  // Nothing listens on port 1; PostgreSQL-backed failed sign-in throttling still applies in this state.
  let t: Awaited<ReturnType<typeof appWithRoutes>>;
  beforeAll(async () => {
    t = await appWithRoutes({ REDIS_URL: "redis://127.0.0.1:1", RATE_LIMIT_LOGIN: "1/60" });
  });
  afterAll(async () => t?.close());

  it("lets requests through (fails open, logged) instead of failing sign-in with a 500", async () => {
    // Over the limit of 1, and still let through: the count could not be kept, so nothing is refused. (No elapsed-time
    // assertion: the client neither queues commands while disconnected nor retries them; see http/rate-limit.ts.)
    for (let i = 0; i < 3; i++) expect((await post(t.app, "/t/json")).statusCode).toBe(200);
  });
});

// CI (.ci/run) starts a Redis and passes its URL as REDIS_TEST_URL.
const REDIS_URL = process.env.REDIS_TEST_URL ?? "redis://127.0.0.1:6379";

async function redisAnswers(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    // Generous: a busy machine must not turn "Redis is there" into a silent skip.
    connectTimeout: 10_000,
    retryStrategy: () => null,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

const haveRedis = await redisAnswers();
if (!haveRedis) console.warn(`SKIPPED Redis-shared rate limits: no Redis answers at ${REDIS_URL} (.ci/run starts one)`);

describe.skipIf(!haveRedis)("Redis-shared rate limits across two instances", () => {
  const prefix = `tessera-test:${randomBytes(6).toString("hex")}:`;
  let a: Awaited<ReturnType<typeof appWithRoutes>>;
  let b: Awaited<ReturnType<typeof appWithRoutes>>;
  beforeAll(async () => {
    const env = { REDIS_URL, RATE_LIMIT_REDIS_PREFIX: prefix, RATE_LIMIT_LOGIN: "4/60", RATE_LIMIT_REGISTER: "2/1" };
    a = await appWithRoutes(env);
    b = await appWithRoutes(env);
  });
  afterAll(async () => {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await a?.close();
    await b?.close();
  });

  it("two instances see one count, so the limit holds across them", async () => {
    const ip = { remoteAddress: "198.51.100.30" };
    expect((await post(a.app, "/t/json", ip)).headers["x-ratelimit-remaining"]).toBe("3");
    expect((await post(b.app, "/t/json", ip)).headers["x-ratelimit-remaining"]).toBe("2");
    expect((await post(a.app, "/t/json", ip)).statusCode).toBe(200);
    expect((await post(b.app, "/t/json", ip)).statusCode).toBe(200);
    const limitedOnA = await post(a.app, "/t/json", ip);
    const limitedOnB = await post(b.app, "/t/json", ip);
    expect([limitedOnA.statusCode, limitedOnB.statusCode]).toEqual([429, 429]);
    expect(Number(limitedOnB.headers["retry-after"])).toBeGreaterThan(0);
    expect(limitedOnB.json().error.code).toBe("RATE_LIMITED");
    // Another IP is unaffected.
    expect((await post(b.app, "/t/json", { remoteAddress: "198.51.100.31" })).statusCode).toBe(200);
  });

  it("keeps counters under the configured prefix and resets them when the window expires", async () => {
    const ip = { remoteAddress: "198.51.100.32" };
    expect((await post(a.app, "/t/other", ip)).statusCode).toBe(200);
    expect((await post(b.app, "/t/other", ip)).statusCode).toBe(200);
    expect((await post(a.app, "/t/other", ip)).statusCode).toBe(429);
    const redis = new Redis(REDIS_URL);
    try {
      const key = `${prefix}register:198.51.100.32`;
      expect(await redis.get(key)).toBe("3");
      // The window is the counter's expiry in Redis, set on the first hit: at most the 1-second window.
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1000);
      // Redis expires it on its own clock; expire it now instead of sleeping, and both instances count afresh.
      await redis.pexpire(key, 0);
    } finally {
      await redis.quit();
    }
    expect((await post(b.app, "/t/other", ip)).statusCode).toBe(200);
    expect((await post(a.app, "/t/other", ip)).statusCode).toBe(200);
    expect((await post(b.app, "/t/other", ip)).statusCode).toBe(429);
  });
});
