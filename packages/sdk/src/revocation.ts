/**
 * Where the SDK records session ids ended by back-channel logout (or a local sign-out), so access JWTs of those
 * sessions are refused at once instead of at their expiry. `has` may answer synchronously (the in-memory store does,
 * keeping the per-request check free) or with a promise (a shared store such as Redis for apps with several
 * instances). Entries only need to live as long as an access JWT can: after that the refresh fails at Tessera anyway.
 *
 * @example
 * ```ts
 * // The shared Redis store for apps with several instances ships as @tessera/sdk/redis:
 * import { RedisRevokedSessionStore } from "@tessera/sdk/redis";
 * createTessera({ ...options, revokedSessions: new RedisRevokedSessionStore({ client: redis }) });
 * ```
 */
export interface RevokedSessionStore {
  /** Records `sid` as revoked for at least `ttlSeconds`. */
  add(sid: string, ttlSeconds: number): void | Promise<void>;
  /** Whether `sid` was revoked. */
  has(sid: string): boolean | Promise<boolean>;
}

/**
 * The default store: a bounded in-process map of session id → expiry. Right for a single instance; with several
 * instances each receives its own back-channel call only if Tessera is told about each, so use a shared store.
 *
 * @example
 * ```ts
 * const store = new MemoryRevokedSessionStore({ maxEntries: 50_000 });
 * store.add("3f0c…", 600);
 * store.has("3f0c…"); // true
 * ```
 */
export class MemoryRevokedSessionStore implements RevokedSessionStore {
  readonly #entries = new Map<string, number>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: { maxEntries?: number; now?: () => number } = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  add(sid: string, ttlSeconds: number): void {
    this.#entries.delete(sid);
    if (this.#entries.size >= this.#maxEntries) this.#evict();
    this.#entries.set(sid, this.#now() + ttlSeconds * 1000);
  }

  has(sid: string): boolean {
    if (this.#entries.size === 0) return false;
    const until = this.#entries.get(sid);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#entries.delete(sid);
    return false;
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(): void {
    const now = this.#now();
    for (const [sid, until] of this.#entries) if (until <= now) this.#entries.delete(sid);
    // Still full of live entries: drop the oldest (insertion order). Evicting a live entry only means that session's
    // access JWTs live out their few minutes; refusing new revocations would be worse.
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }
}
