import type { Redis } from "ioredis";
import type { Clock } from "../libraries/clock.ts";

/**
 * Request counters behind @fastify/rate-limit: a fixed window per key. Keys are `<route name>:<client IP>`, so routes
 * that take the same credential (the hosted `/login` form and the JSON `/api/v1/login`) share one count when they use
 * the same limit name; `child()` therefore returns the same store instead of a per-URL one.
 */
export interface RateLimitStore {
  incr(key: string, callback: StoreCallback, timeWindowMs: number, max: number): void;
  read(key: string, callback: StoreCallback, timeWindowMs: number): void;
  child(routeOptions: unknown): RateLimitStore;
}
type StoreCallback = (error: Error | null, result?: { current: number; ttl: number }) => void;

interface Window {
  count: number;
  startedAtMs: number;
  windowMs: number;
}

/** A sweep of expired windows runs at most once per this many new windows (it is O(n)). */
const SWEEP_EVERY = 10_000;
/** Live counters kept at most (about 100 bytes each). */
const MAX_WINDOWS = 200_000;

/**
 * One instance's counters, in memory, on the injected clock (tests move the clock instead of sleeping). Expired
 * windows are dropped as it goes, and at most `maxWindows` are kept: within one window a flood of distinct client
 * addresses (an IPv6 /48 holds 65,536 /64s) would otherwise grow it without bound. Past the cap the oldest windows
 * are dropped first; those clients start a fresh count, which beats running out of memory.
 */
export class ClockMemoryStore implements RateLimitStore {
  private readonly windows = new Map<string, Window>();
  private newSinceSweep = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxWindows = MAX_WINDOWS,
  ) {}

  incr(key: string, callback: StoreCallback, timeWindowMs: number): void {
    const now = this.clock.now().getTime();
    let window = this.windows.get(key);
    if (!window || window.startedAtMs + window.windowMs <= now) {
      window = { count: 0, startedAtMs: now, windowMs: timeWindowMs };
      // Deleted first so the new window goes to the end of the Map's (oldest-first) order.
      this.windows.delete(key);
      this.windows.set(key, window);
      if (++this.newSinceSweep >= SWEEP_EVERY) this.sweep(now);
      if (this.windows.size > this.maxWindows) this.shrink();
    }
    window.count += 1;
    callback(null, { current: window.count, ttl: window.startedAtMs + window.windowMs - now });
  }

  read(key: string, callback: StoreCallback): void {
    const now = this.clock.now().getTime();
    const window = this.windows.get(key);
    if (!window || window.startedAtMs + window.windowMs <= now) callback(null, { current: 0, ttl: 0 });
    else callback(null, { current: window.count, ttl: window.startedAtMs + window.windowMs - now });
  }

  child(): RateLimitStore {
    return this;
  }

  /** Number of live counters. */
  get size(): number {
    return this.windows.size;
  }

  /**
   * Drops the oldest windows (the Map holds them in start order, so expired ones go first) down to 90 % of the cap:
   * a batch at a time, so a flood costs O(1) per request on average.
   */
  private shrink(): void {
    const target = Math.floor(this.maxWindows * 0.9);
    for (const key of this.windows.keys()) {
      if (this.windows.size <= target) break;
      this.windows.delete(key);
    }
  }

  private sweep(now: number): void {
    this.newSinceSweep = 0;
    for (const [key, window] of this.windows) {
      if (window.startedAtMs + window.windowMs <= now) this.windows.delete(key);
    }
  }
}

// INCR and set the expiry on the first hit, atomically (one script), so every instance sees one count per window.
const INCR_SCRIPT = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {current, ttl}
`;

const READ_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(current), ttl}
`;

type RedisWithScripts = Redis & {
  tesseraRateIncr(key: string, windowMs: number): Promise<[number, number]>;
  tesseraRateRead(key: string): Promise<[number, number]>;
};

/** Counters shared by every instance through Redis, under a configurable key prefix. */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: RedisWithScripts;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    this.redis = redis as RedisWithScripts;
    if (!("tesseraRateIncr" in redis)) {
      redis.defineCommand("tesseraRateIncr", { numberOfKeys: 1, lua: INCR_SCRIPT });
      redis.defineCommand("tesseraRateRead", { numberOfKeys: 1, lua: READ_SCRIPT });
    }
  }

  incr(key: string, callback: StoreCallback, timeWindowMs: number): void {
    this.redis.tesseraRateIncr(this.prefix + key, timeWindowMs).then(
      ([current, ttl]) => callback(null, { current, ttl }),
      (error: Error) => callback(error),
    );
  }

  read(key: string, callback: StoreCallback): void {
    this.redis.tesseraRateRead(this.prefix + key).then(
      ([current, ttl]) => callback(null, { current, ttl }),
      (error: Error) => callback(error),
    );
  }

  child(): RateLimitStore {
    return this;
  }
}
