import {
  authorizationCodes,
  clients,
  type Executor,
  refreshTokens,
  sessions,
  webhookDeliveries,
  webhookEndpoints,
} from "@tessera/db";
import { and, arrayContains, asc, desc, eq, inArray, isNotNull, isNull, lt, lte, or, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";

export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;

export async function findEndpoint(db: Executor, clientId: string): Promise<WebhookEndpointRow | null> {
  const [row] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.clientId, clientId));
  return row ?? null;
}

export async function upsertEndpoint(
  db: Executor,
  values: { clientId: string; url: string; events: string[]; secretEncrypted?: string; now: Date },
): Promise<WebhookEndpointRow> {
  const set = {
    url: values.url,
    events: values.events,
    updatedAt: values.now,
    ...(values.secretEncrypted ? { secretEncrypted: values.secretEncrypted } : {}),
  };
  const [row] = await db
    .insert(webhookEndpoints)
    .values({
      clientId: values.clientId,
      url: values.url,
      events: values.events,
      secretEncrypted: values.secretEncrypted ?? "",
      createdAt: values.now,
      updatedAt: values.now,
    })
    .onConflictDoUpdate({ target: webhookEndpoints.clientId, set })
    .returning();
  if (!row) throw new Error("upsert returned no row");
  return row;
}

export async function setEndpointSecret(
  db: Executor,
  clientId: string,
  secretEncrypted: string,
  now: Date,
): Promise<WebhookEndpointRow | null> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ secretEncrypted, updatedAt: now })
    .where(eq(webhookEndpoints.clientId, clientId))
    .returning();
  return row ?? null;
}

export async function deleteEndpoint(db: Executor, clientId: string): Promise<boolean> {
  const rows = await db
    .delete(webhookEndpoints)
    .where(eq(webhookEndpoints.clientId, clientId))
    .returning({ id: webhookEndpoints.clientId });
  return rows.length > 0;
}

/** Endpoints subscribed to `eventType`, optionally only those of the given clients (internal ids). */
export async function subscribedEndpoints(
  db: Executor,
  eventType: string,
  clientIds?: string[],
): Promise<Array<{ clientId: string }>> {
  if (clientIds && clientIds.length === 0) return [];
  return db
    .select({ clientId: webhookEndpoints.clientId })
    .from(webhookEndpoints)
    .where(
      and(
        arrayContains(webhookEndpoints.events, [eventType]),
        clientIds ? inArray(webhookEndpoints.clientId, clientIds) : undefined,
      ),
    );
}

/** The clients (internal ids) that took part in the sessions: hold a refresh token or were issued a code in them. */
export async function sessionClientIds(db: Executor, sessionIds: string[]): Promise<string[]> {
  if (sessionIds.length === 0) return [];
  const rows = await db
    .selectDistinct({ clientId: refreshTokens.clientId })
    .from(refreshTokens)
    .where(inArray(refreshTokens.sessionId, sessionIds))
    .union(
      db
        .selectDistinct({ clientId: authorizationCodes.clientId })
        .from(authorizationCodes)
        .where(inArray(authorizationCodes.sessionId, sessionIds)),
    );
  return rows.map((r) => r.clientId);
}

export async function insertDeliveries(
  db: Executor,
  rows: Array<{ clientId: string; userId: string; eventType: string; payload: unknown; id?: string }>,
): Promise<void> {
  if (rows.length) await db.insert(webhookDeliveries).values(rows);
}

export interface ClaimedDelivery {
  delivery: WebhookDeliveryRow;
  url: string;
  secretEncrypted: string;
}

/**
 * Claims up to `limit` due deliveries, at most the OLDEST pending one per (client, user) so events reach a receiver in
 * order: a delivery is due only when no earlier pending (undelivered, not dead) delivery of the same client and user
 * exists. Rows are locked with SKIP LOCKED and leased (next_attempt_at moved, attempt counted) in one statement.
 */
export async function claimDueDeliveries(
  db: Executor,
  now: Date,
  leaseUntil: Date,
  limit: number,
): Promise<ClaimedDelivery[]> {
  const earlier = alias(webhookDeliveries, "earlier");
  const due = db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(
      and(
        isNull(webhookDeliveries.deliveredAt),
        isNull(webhookDeliveries.deadAt),
        or(eq(webhookDeliveries.attempts, 0), lte(webhookDeliveries.nextAttemptAt, now)),
        sql`not exists (${db
          .select({ one: sql`1` })
          .from(earlier)
          .where(
            and(
              eq(earlier.clientId, webhookDeliveries.clientId),
              eq(earlier.userId, webhookDeliveries.userId),
              lt(earlier.seq, webhookDeliveries.seq),
              isNull(earlier.deliveredAt),
              isNull(earlier.deadAt),
            ),
          )})`,
      ),
    )
    .orderBy(asc(webhookDeliveries.seq))
    .limit(limit)
    .for("update", { of: webhookDeliveries, skipLocked: true });
  const claimed = await db
    .update(webhookDeliveries)
    .set({ nextAttemptAt: leaseUntil, attempts: sql`${webhookDeliveries.attempts} + 1` })
    .where(inArray(webhookDeliveries.id, due))
    .returning();
  if (claimed.length === 0) return [];
  const endpoints = await db
    .select()
    .from(webhookEndpoints)
    .where(
      inArray(
        webhookEndpoints.clientId,
        claimed.map((d) => d.clientId),
      ),
    );
  const byClient = new Map(endpoints.map((e) => [e.clientId, e]));
  return claimed
    .sort((a, b) => a.seq - b.seq)
    .map((delivery) => {
      const endpoint = byClient.get(delivery.clientId);
      return { delivery, url: endpoint?.url ?? "", secretEncrypted: endpoint?.secretEncrypted ?? "" };
    });
}

export async function markDelivered(db: Executor, id: string, now: Date): Promise<void> {
  await db.update(webhookDeliveries).set({ deliveredAt: now, lastError: null }).where(eq(webhookDeliveries.id, id));
}

export async function markFailed(
  db: Executor,
  id: string,
  values: { lastError: string; nextAttemptAt: Date; deadAt: Date | null },
): Promise<void> {
  // A stale attempt (its lease ran out and another run delivered it meanwhile) must not undo the delivery.
  await db
    .update(webhookDeliveries)
    .set(values)
    .where(and(eq(webhookDeliveries.id, id), isNull(webhookDeliveries.deliveredAt)));
}

export async function listDeliveries(
  db: Executor,
  filter: { state?: "pending" | "delivered" | "dead"; clientId?: string; limit: number },
): Promise<Array<WebhookDeliveryRow & { publicClientId: string }>> {
  const state =
    filter.state === "dead"
      ? isNotNull(webhookDeliveries.deadAt)
      : filter.state === "delivered"
        ? isNotNull(webhookDeliveries.deliveredAt)
        : filter.state === "pending"
          ? and(isNull(webhookDeliveries.deliveredAt), isNull(webhookDeliveries.deadAt))
          : undefined;
  const rows = await db
    .select({ delivery: webhookDeliveries, publicClientId: clients.clientId })
    .from(webhookDeliveries)
    .innerJoin(clients, eq(clients.id, webhookDeliveries.clientId))
    .where(and(state, filter.clientId ? eq(clients.clientId, filter.clientId) : undefined))
    .orderBy(desc(webhookDeliveries.seq))
    .limit(filter.limit);
  return rows.map((r) => ({ ...r.delivery, publicClientId: r.publicClientId }));
}

/** Puts a dead delivery back in the queue (same id, so a receiver that did get it still sees it once). */
export async function requeueDead(db: Executor, id: string, now: Date): Promise<WebhookDeliveryRow | null> {
  const [row] = await db
    .update(webhookDeliveries)
    .set({ deadAt: null, attempts: 0, nextAttemptAt: now, lastError: null })
    .where(and(eq(webhookDeliveries.id, id), isNotNull(webhookDeliveries.deadAt)))
    .returning();
  return row ?? null;
}

/** The clients (internal ids) a user used: holds or held a refresh token, or was issued a code, for the user. */
export async function userClientIds(db: Executor, userId: string): Promise<string[]> {
  const rows = await db
    .selectDistinct({ clientId: refreshTokens.clientId })
    .from(refreshTokens)
    .where(eq(refreshTokens.userId, userId))
    .union(
      db
        .selectDistinct({ clientId: authorizationCodes.clientId })
        .from(authorizationCodes)
        .where(eq(authorizationCodes.userId, userId)),
    );
  return rows.map((r) => r.clientId);
}

export async function findDelivery(db: Executor, id: string): Promise<WebhookDeliveryRow | null> {
  const [row] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
  return row ?? null;
}

export async function sessionOwners(
  db: Executor,
  sessionIds: string[],
): Promise<Array<{ sessionId: string; userId: string }>> {
  if (sessionIds.length === 0) return [];
  return db
    .select({ sessionId: sessions.id, userId: sessions.userId })
    .from(sessions)
    .where(inArray(sessions.id, sessionIds));
}
