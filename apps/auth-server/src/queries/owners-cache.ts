import type { DatabaseHandle, Executor } from "@tessera/db";
import { sql } from "drizzle-orm";
import { findAccessTokenOwners } from "./refresh-tokens.ts";

/**
 * A per-instance cache of what an access token check reads (session, user, client, live chain: `findAccessTokenOwners`),
 * so /userinfo and /introspect answer without a database round trip, and of a user's authorization claims per app
 * (roles, permissions, entitlements: `cachedClaims`), so /userinfo, /introspect and the token grants make no claims
 * query either; with logout, a revoked chain, a disabled or deleted user, a profile change and a changed role,
 * permission or entitlement still taking effect on every instance:
 *
 * - Every write path that ends a session, revokes a chain, disables, deletes or changes a user, changes a client, a
 *   user's role assignments or entitlement grants (`notifyClaimsChange`), or the authorization catalog (roles,
 *   permissions, entitlement names: `notifyCatalogChange`, from bumpCatalogVersion) calls one of the `notify…Change`
 *   functions below inside its transaction. That drops the entries from the writing
 *   instance's cache at once and sends `pg_notify(CHANNEL, …)`, which PostgreSQL delivers at commit (never for a
 *   rolled-back transaction) to every instance's listener (DatabaseHandle.listen), which drops them there too.
 * - Entries live at most OWNERS_CACHE_TTL_MS (a safety net), and only accepted owners are cached; an entry that no
 *   longer passes the caller's check at the time of use (an idle deadline passed) is read again from the database.
 *   A claims entry is also not used past the earliest expiry of the assignments and grants it was built from (judged
 *   on the caller's clock), so an expiring role drops out of the claims at its expiry as without the cache.
 * - While the listener is not proven alive (not yet subscribed, connection lost, heartbeat late) the cache is bypassed
 *   and emptied: notifications may be lost then.
 * - On PGlite (one process holds the database) there is no listener: the local drop is the whole invalidation.
 *
 * A read that raced an invalidation (it started before, and may have read the old rows) is not stored: every
 * invalidation bumps a generation number the read compares before storing.
 */
export const OWNERS_CACHE_CHANNEL = "tessera_owners_cache";
export const OWNERS_CACHE_TTL_MS = 5000;
/** Bound on entries per instance; the cache is emptied when reached (cheap, and only costs misses). */
const OWNERS_CACHE_MAX = 20_000;
/** The listener's heartbeat must be younger than this for the cache to be used (the listener beats every second). */
const LISTENER_FRESH_MS = 2500;
/** More session ids than this in one change are sent as "everything" (a NOTIFY payload is at most 8000 bytes). */
const MAX_IDS_PER_NOTIFY = 100;

type Owners = NonNullable<Awaited<ReturnType<typeof findAccessTokenOwners>>>;

interface Entry {
  owners: Owners;
  expiresAtMs: number;
}

interface ClaimsEntry {
  claims: unknown;
  expiresAtMs: number;
  /** The earliest expiry (caller's clock, epoch ms) among the rows the claims were built from; null: none expires. */
  validUntilMs: number | null;
}

class OwnersCache {
  /** Session id → client id (public `client_id`) → entry. */
  readonly bySession = new Map<string, Map<string, Entry>>();
  size = 0;
  /** User id → client row id (`clients.id`) → authorization claims. */
  readonly claimsByUser = new Map<string, Map<string, ClaimsEntry>>();
  claimsSize = 0;
  generation = 0;
  /** PGlite: always usable; PostgreSQL: only while the listener is up and its heartbeat fresh. */
  listened: boolean;
  up = false;
  lastBeatMs = 0;

  constructor(listened: boolean) {
    this.listened = listened;
  }

  usable(nowMs: number): boolean {
    return !this.listened || (this.up && nowMs - this.lastBeatMs < LISTENER_FRESH_MS);
  }

  clear(): void {
    this.generation++;
    this.bySession.clear();
    this.size = 0;
    this.clearClaims();
  }

  clearClaims(): void {
    this.generation++;
    this.claimsByUser.clear();
    this.claimsSize = 0;
  }

  dropClaims(userId: string): void {
    this.generation++;
    const entries = this.claimsByUser.get(userId);
    if (!entries) return;
    this.claimsSize -= entries.size;
    this.claimsByUser.delete(userId);
  }

  dropSession(sessionId: string): void {
    this.generation++;
    const entries = this.bySession.get(sessionId);
    if (!entries) return;
    this.size -= entries.size;
    this.bySession.delete(sessionId);
  }

  dropUser(userId: string): void {
    this.dropClaims(userId);
    for (const [sessionId, entries] of this.bySession) {
      const first = entries.values().next().value;
      if (first && first.owners.user.id === userId) {
        this.size -= entries.size;
        this.bySession.delete(sessionId);
      }
    }
  }

  /** Applies a notification payload (see `send`). */
  apply(payload: string): void {
    if (payload.startsWith("s:")) for (const id of payload.slice(2).split(",")) this.dropSession(id);
    else if (payload.startsWith("u:")) this.dropUser(payload.slice(2));
    else if (payload === "c:*") this.clearClaims();
    else if (payload.startsWith("c:")) this.dropClaims(payload.slice(2));
    else this.clear();
  }
}

/** Caches by Drizzle dialect: a database handle and every transaction opened on it share theirs, two handles do not. */
const caches = new WeakMap<object, OwnersCache>();

function dialectOf(db: Executor): object {
  return (db as unknown as { dialect: object }).dialect;
}

/**
 * Starts this instance's cache for `db` (the app's database handle): on PostgreSQL with a listener on the database,
 * on PGlite without. Returns the function that stops it (the app's onClose).
 */
export function startOwnersCache(db: Executor, database: Pick<DatabaseHandle, "listen">): () => Promise<void> {
  const cache = new OwnersCache(Boolean(database.listen));
  caches.set(dialectOf(db), cache);
  const stop = database.listen?.(OWNERS_CACHE_CHANNEL, {
    notify: (payload) => cache.apply(payload),
    state: (up) => {
      // Either way everything goes: while down notifications may have been missed.
      cache.up = up;
      cache.clear();
    },
    beat: () => {
      cache.lastBeatMs = Date.now();
    },
  });
  return async () => {
    caches.delete(dialectOf(db));
    await stop?.();
  };
}

/**
 * `findAccessTokenOwners` through the cache: the owners if `accept` takes them, else null. Only accepted owners are
 * stored; a stored entry `accept` refuses now is read again from the database.
 */
export async function acceptedAccessTokenOwners(
  db: Executor,
  sessionId: string,
  clientId: string,
  accept: (owners: Owners) => boolean,
): Promise<Owners | null> {
  const cache = caches.get(dialectOf(db));
  const nowMs = Date.now();
  if (!cache?.usable(nowMs)) {
    const owners = await findAccessTokenOwners(db, sessionId, clientId);
    return owners && accept(owners) ? owners : null;
  }
  const hit = cache.bySession.get(sessionId)?.get(clientId);
  if (hit && hit.expiresAtMs > nowMs && accept(hit.owners)) return hit.owners;
  const generation = cache.generation;
  const owners = await findAccessTokenOwners(db, sessionId, clientId);
  if (!owners || !accept(owners)) return null;
  if (cache.generation === generation && cache.usable(Date.now())) {
    if (cache.size >= OWNERS_CACHE_MAX) cache.clear();
    let entries = cache.bySession.get(sessionId);
    if (!entries) {
      entries = new Map();
      cache.bySession.set(sessionId, entries);
    }
    if (!entries.has(clientId)) cache.size++;
    entries.set(clientId, { owners, expiresAtMs: nowMs + OWNERS_CACHE_TTL_MS });
  }
  return owners;
}

/**
 * A user's authorization claims for one app through the cache: `load` runs on a miss (and whenever the cache is not
 * usable) and answers the claims with the earliest expiry among the rows they were built from (`validUntil`, null for
 * none). `now` is the caller's clock. The caller must only ask for claims of a user and client it has just accepted
 * (a live session of an enabled user): the entry says nothing about either.
 */
export async function cachedClaims<T>(
  db: Executor,
  userId: string,
  clientRowId: string,
  now: Date,
  load: () => Promise<{ claims: T; validUntil: Date | null }>,
): Promise<T> {
  const cache = caches.get(dialectOf(db));
  const nowMs = Date.now();
  if (!cache?.usable(nowMs)) return (await load()).claims;
  const hit = cache.claimsByUser.get(userId)?.get(clientRowId);
  if (hit && hit.expiresAtMs > nowMs && (hit.validUntilMs === null || hit.validUntilMs > now.getTime())) {
    return hit.claims as T;
  }
  const generation = cache.generation;
  const { claims, validUntil } = await load();
  if (cache.generation === generation && cache.usable(Date.now())) {
    if (cache.claimsSize >= OWNERS_CACHE_MAX) cache.clearClaims();
    let entries = cache.claimsByUser.get(userId);
    if (!entries) {
      entries = new Map();
      cache.claimsByUser.set(userId, entries);
    }
    if (!entries.has(clientRowId)) cache.claimsSize++;
    entries.set(clientRowId, {
      claims,
      expiresAtMs: nowMs + OWNERS_CACHE_TTL_MS,
      validUntilMs: validUntil === null ? null : validUntil.getTime(),
    });
  }
  return claims;
}

/** Drops locally at once, and tells every instance at commit. */
async function send(db: Executor, payload: string, local: (cache: OwnersCache) => void): Promise<void> {
  const cache = caches.get(dialectOf(db));
  if (cache) local(cache);
  await db.execute(sql`select pg_notify(${OWNERS_CACHE_CHANNEL}, ${payload})`);
}

/** Sessions ended or changed in a way that can stop their access tokens (logout, revoked chains). */
export async function notifySessionChange(db: Executor, sessionIds: string | readonly string[]): Promise<void> {
  const ids = typeof sessionIds === "string" ? [sessionIds] : sessionIds;
  if (ids.length === 0) return;
  if (ids.length > MAX_IDS_PER_NOTIFY) return send(db, "*", (cache) => cache.clear());
  return send(db, `s:${ids.join(",")}`, (cache) => {
    for (const id of ids) cache.dropSession(id);
  });
}

/** A user disabled, deleted or changed (profile claims), or every chain of a user in some client revoked. */
export async function notifyUserChange(db: Executor, userId: string): Promise<void> {
  return send(db, `u:${userId}`, (cache) => cache.dropUser(userId));
}

/** A user's role assignments or entitlement grants changed (assigned, removed, new expiry, a purchase's grants). */
export async function notifyClaimsChange(db: Executor, userIds: string | readonly string[]): Promise<void> {
  const ids = typeof userIds === "string" ? [userIds] : [...new Set(userIds)];
  if (ids.length === 0) return;
  if (ids.length > 1) return send(db, "c:*", (cache) => cache.clearClaims());
  return send(db, `c:${ids[0]}`, (cache) => cache.dropClaims(ids[0] as string));
}

/** The authorization catalog changed (a role, permission or entitlement created, renamed, linked or deleted). */
export async function notifyCatalogChange(db: Executor): Promise<void> {
  return send(db, "c:*", (cache) => cache.clearClaims());
}

/** Anything else (a client disabled, many users at once): every instance empties its cache. */
export async function notifyAllChange(db: Executor): Promise<void> {
  return send(db, "*", (cache) => cache.clear());
}

/** Whether this instance's cache holds claims of the user for the app (tests and diagnostics). */
export function claimsCacheHolds(db: Executor, userId: string, clientRowId: string): boolean {
  return Boolean(caches.get(dialectOf(db))?.claimsByUser.get(userId)?.has(clientRowId));
}

/** Whether this instance's cache is in use and holds the entry (tests and diagnostics). */
export function ownersCacheHolds(
  db: Executor,
  sessionId: string,
  clientId: string,
): { usable: boolean; held: boolean } {
  const cache = caches.get(dialectOf(db));
  return {
    usable: Boolean(cache?.usable(Date.now())),
    held: Boolean(cache?.bySession.get(sessionId)?.has(clientId)),
  };
}
