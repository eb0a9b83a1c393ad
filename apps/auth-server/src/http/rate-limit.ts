import rateLimit, { type RateLimitOptions } from "@fastify/rate-limit";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { Config, RateLimitRoute } from "../config/index.ts";
import { AppError } from "../errors/index.ts";
import { audit } from "../libraries/audit.ts";
import { ipBlock } from "../libraries/client-ip.ts";
import { ClockMemoryStore, type RateLimitStore, RedisRateLimitStore } from "./rate-limit-store.ts";

/**
 * Per-route request limits per client IP (@fastify/rate-limit, registered with `global: false`: only routes that ask
 * for a limit get one). `request.ip` is the socket address unless the peer is a configured trusted proxy (Fastify's
 * `trustProxy`, set from TRUSTED_PROXIES in `app.ts`), so a rotated X-Forwarded-For from anyone else changes nothing.
 * IPv6 clients are counted per /64, the smallest block a single customer usually gets.
 *
 * With REDIS_URL the counters live in Redis (every instance sees one count, keys under RATE_LIMIT_REDIS_PREFIX);
 * otherwise in memory, on the injected clock. If Redis stops answering, requests are let through and a warning is
 * logged: sign-in staying up beats a hard dependency on Redis, and the failed sign-in throttling kept in PostgreSQL
 * (per account and per IP) still holds.
 *
 * A limited request is answered 429 with `Retry-After` and code RATE_LIMITED, rendered by the route's errorFormat:
 * the catalog JSON shape, the hosted HTML error page, or OAuth JSON (`slow_down`).
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance) => {
    const { config, clock } = app.ctx;
    let store: RateLimitStore;
    if (config.redisUrl) {
      // Loaded only when configured: most processes (development, tests, single instances) never use Redis.
      const { Redis } = await import("ioredis");
      const redis = new Redis(config.redisUrl, {
        // Fail fast instead of holding requests behind a dead connection: no offline queue (a command while
        // disconnected fails at once and the request goes through), one retry, short timeouts. ioredis keeps
        // reconnecting in the background.
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        commandTimeout: 500,
      });
      redis.on("error", (error: Error) => app.log.warn({ err: { message: error.message } }, "redis error"));
      await redis
        .connect()
        .catch((error: Error) =>
          app.log.warn(
            { err: { message: error.message } },
            "redis not reachable at start; rate limits fail open until it is",
          ),
        );
      app.addHook("onClose", async () => {
        await redis.quit().catch(() => redis.disconnect());
      });
      store = new RedisRateLimitStore(redis, config.rateLimits.redisPrefix);
    } else {
      store = new ClockMemoryStore(clock);
    }
    const audited = new AuditOnce();
    await app.register(rateLimit, {
      global: false,
      store: storeCtor(store),
      skipOnError: true,
      errorResponseBuilder: (_request, context) =>
        new AppError("RATE_LIMITED", undefined, undefined, {
          "retry-after": String(Math.max(1, Math.ceil(context.ttl / 1000))),
        }),
      onExceeded: (request, key) => {
        request.log.warn({ route: request.routeOptions.url }, "rate limit exceeded");
        if (!audited.claim(key, clock.now().getTime())) return;
        const limit = key.slice(0, key.indexOf(":"));
        audit(app.ctx.db, request.meta, { event: "rate_limit.exceeded", outcome: "failure", details: { limit } }).catch(
          (error: Error) => request.log.warn({ err: { message: error.message } }, "audit of a rate limit failed"),
        );
      },
    });
  },
  { name: "tessera-rate-limit" },
);

/** @fastify/rate-limit constructs a custom store itself (`new Store(options)`); this hands it our instance. */
function storeCtor(store: RateLimitStore) {
  return class {
    constructor() {
      // biome-ignore lint/correctness/noConstructorReturn: the plugin's store option takes a constructor; our one store instance carries the clock or the Redis connection
      return store;
    }
  } as unknown as NonNullable<Parameters<typeof rateLimit>[1]["store"]>;
}

/**
 * The `config.rateLimit` of one route, from RATE_LIMIT_<NAME>. Routes with the same name share one count per IP.
 * Put it on the credential-taking method only (the POST), so reading a page is never limited.
 *
 * @example
 * app.post("/login", { config: { errorFormat: "html", rateLimit: routeRateLimit(app.ctx.config, "login") } }, handler)
 */
export function routeRateLimit(config: Config, name: RateLimitRoute): RateLimitOptions | false {
  if (!config.rateLimits.enabled) return false;
  const limit = config.rateLimits.routes[name];
  return {
    max: limit.max,
    timeWindow: limit.windowSeconds * 1000,
    keyGenerator: (request) => `${name}:${ipBlock(request.ip)}`,
  };
}

/**
 * An exceeded limit is audited once per key (limit name + IP) per minute and instance, not once per refused request:
 * a flood of refused requests must not turn into a flood of database writes.
 */
class AuditOnce {
  private readonly until = new Map<string, number>();
  claim(key: string, nowMs: number): boolean {
    const until = this.until.get(key);
    if (until !== undefined && until > nowMs) return false;
    if (this.until.size >= 10_000) {
      for (const [k, u] of this.until) if (u <= nowMs) this.until.delete(k);
      if (this.until.size >= 10_000) return false;
    }
    this.until.set(key, nowMs + 60_000);
    return true;
  }
}
