import { clients, type Executor } from "@tessera/db";
import { and, arrayContains, asc, eq, gt, isNull, sql } from "drizzle-orm";
import { notifyAllChange } from "./owners-cache.ts";
import { prepared } from "./prepared.ts";

export type ClientRow = typeof clients.$inferSelect;
export type NewClientRow = typeof clients.$inferInsert;

export async function insertClient(db: Executor, row: NewClientRow): Promise<ClientRow> {
  const [created] = await db.insert(clients).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

/** A client by its public client_id, disabled or not. */
export async function findClientByClientId(db: Executor, clientId: string): Promise<ClientRow | null> {
  const [row] = await db.select().from(clients).where(eq(clients.clientId, clientId)).limit(1);
  return row ?? null;
}

/** A client by its public client_id, only when it is not disabled. */
export async function findActiveClientByClientId(db: Executor, clientId: string): Promise<ClientRow | null> {
  const [row] = await prepared(db, "client_active_by_client_id", (d) =>
    d
      .select()
      .from(clients)
      .where(and(eq(clients.clientId, sql.placeholder("clientId")), isNull(clients.disabledAt)))
      .limit(1)
      .prepare("client_active_by_client_id"),
  ).execute({ clientId });
  return row ?? null;
}

/**
 * How long an instance may use a client row it read without reading it again: a client disabled, changed or given a
 * new secret on another instance (or by the CLI) takes effect here within this time. On the instance that made the
 * change it takes effect at once (forgetClient).
 */
export const CLIENT_CACHE_TTL_MS = 5_000;
/** Bound on cached rows per database handle (there are few clients; this only stops unbounded growth). */
const CLIENT_CACHE_MAX = 10_000;

interface ClientCache {
  entries: Map<string, { row: ClientRow; expiresAtMs: number }>;
  /** Bumped by forgetClient: a read that started before it must not store what it read. */
  generation: number;
}

const clientCaches = new WeakMap<object, ClientCache>();

function clientCacheOf(db: Executor): ClientCache {
  let cache = clientCaches.get(db);
  if (!cache) {
    cache = { entries: new Map(), generation: 0 };
    clientCaches.set(db, cache);
  }
  return cache;
}

/**
 * findActiveClientByClientId through a per-instance cache (keyed by the database handle, so two instances never
 * share one): an active client's row is reused for up to CLIENT_CACHE_TTL_MS by `nowMs`. Unknown and disabled
 * clients are not cached (enabling one takes effect at once). Use only with the database handle, never a
 * transaction.
 */
export async function cachedActiveClient(db: Executor, clientId: string, nowMs: number): Promise<ClientRow | null> {
  const cache = clientCacheOf(db);
  const hit = cache.entries.get(clientId);
  if (hit && hit.expiresAtMs > nowMs) return hit.row;
  const generation = cache.generation;
  const row = await findActiveClientByClientId(db, clientId);
  if (cache.generation === generation) {
    if (row) {
      if (cache.entries.size >= CLIENT_CACHE_MAX) cache.entries.clear();
      cache.entries.set(clientId, { row, expiresAtMs: nowMs + CLIENT_CACHE_TTL_MS });
    } else {
      cache.entries.delete(clientId);
    }
  }
  return row;
}

/** Drops a client from this instance's cache: call with the database handle after a change to it has committed. */
export function forgetClient(db: Executor, clientId: string): void {
  const cache = clientCacheOf(db);
  cache.generation++;
  cache.entries.delete(clientId);
}

/** Clients ordered by client_id, keyset-paginated (`after` is the last client_id of the previous page). */
export async function selectClients(
  db: Executor,
  options: { limit: number; after?: string | undefined; includeDisabled: boolean },
): Promise<ClientRow[]> {
  const conditions = [];
  if (options.after !== undefined) conditions.push(gt(clients.clientId, options.after));
  if (!options.includeDisabled) conditions.push(isNull(clients.disabledAt));
  return db
    .select()
    .from(clients)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(asc(clients.clientId))
    .limit(options.limit);
}

export async function updateClientByClientId(
  db: Executor,
  clientId: string,
  values: Partial<NewClientRow>,
): Promise<ClientRow | null> {
  const [row] = await db.update(clients).set(values).where(eq(clients.clientId, clientId)).returning();
  if (row) await notifyAllChange(db);
  return row ?? null;
}

/**
 * Sets a new secret hash. With `previousExpiresAt` the current hash becomes the previous one, copied inside the UPDATE
 * itself so two concurrent rotations cannot lose a secret; with null no previous secret stays valid.
 */
export async function replaceClientSecret(
  db: Executor,
  clientId: string,
  values: { secretHash: string; previousExpiresAt: Date | null; now: Date },
): Promise<ClientRow | null> {
  const [row] = await db
    .update(clients)
    .set({
      previousSecretHash: values.previousExpiresAt ? sql`${clients.clientSecretHash}` : null,
      previousSecretExpiresAt: values.previousExpiresAt,
      clientSecretHash: values.secretHash,
      updatedAt: values.now,
    })
    .where(eq(clients.clientId, clientId))
    .returning();
  return row ?? null;
}

/** True when an active client lists this exact origin among its web origins (CORS, http/cors.ts). */
export async function activeClientHasWebOrigin(db: Executor, origin: string): Promise<boolean> {
  const [row] = await db
    .select({ id: clients.id })
    .from(clients)
    .where(and(isNull(clients.disabledAt), arrayContains(clients.webOrigins, [origin])))
    .limit(1);
  return row !== undefined;
}
