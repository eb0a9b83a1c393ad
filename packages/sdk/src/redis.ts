import type { Redis } from "ioredis";
import type { RevokedSessionStore } from "./revocation.ts";

export type { RevokedSessionStore } from "./revocation.ts";

export interface RedisRevokedSessionStoreOptions {
  /**
   * An ioredis client the app owns (connected, shared with its other Redis use; the store never closes it). Give it a
   * `commandTimeout` (e.g. 500 ms): a check that cannot reach Redis then fails closed quickly with SESSION_CHECK_FAILED
   * instead of waiting on ioredis's reconnect queue.
   */
  client: Redis;
  /** Prefix of every key, so several apps (or deployments) can share one Redis. Default `tessera:revoked:`. */
  keyPrefix?: string;
}

/**
 * The revoked-session store for apps with several instances: session ids ended by back-channel logout (or a local
 * sign-out) are written to Redis with their time to live, so the instance that received Tessera's back-channel call
 * and every other instance refuse that session's access JWTs at once. One `SET … EX` per revocation and one `EXISTS`
 * per authenticated request; entries expire by themselves once no access JWT of the session can still be valid.
 *
 * Built on ioredis: the Redis client Tessera itself uses (rate limits), maintained, with cluster and sentinel support,
 * so one client library serves the app and the SDK.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * import { createTessera } from "@tessera/sdk";
 * import { RedisRevokedSessionStore } from "@tessera/sdk/redis";
 *
 * const redis = new Redis(process.env.REDIS_URL!, { commandTimeout: 500 });
 * const tessera = createTessera({ ...options, revokedSessions: new RedisRevokedSessionStore({ client: redis }) });
 * ```
 */
export class RedisRevokedSessionStore implements RevokedSessionStore {
  readonly #client: Redis;
  readonly #prefix: string;

  constructor(options: RedisRevokedSessionStoreOptions) {
    if (!options?.client) throw new TypeError("RedisRevokedSessionStore: `client` (an ioredis Redis) is required");
    this.#client = options.client;
    this.#prefix = options.keyPrefix ?? "tessera:revoked:";
  }

  async add(sid: string, ttlSeconds: number): Promise<void> {
    // Whole seconds, at least one: Redis refuses EX 0 and fractions.
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    await this.#client.set(this.#prefix + sid, "1", "EX", ttl);
  }

  async has(sid: string): Promise<boolean> {
    return (await this.#client.exists(this.#prefix + sid)) === 1;
  }
}
