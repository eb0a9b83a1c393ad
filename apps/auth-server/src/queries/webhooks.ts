import {
  authorizationCodes,
  clients,
  type Executor,
  refreshTokens,
  rowsOf,
  sessions,
  webhookDeliveries,
  webhookEndpoints,
} from "@tessera/db";
import { and, arrayContains, asc, desc, eq, inArray, isNotNull, isNull, lt, lte, or, type SQL, sql } from "drizzle-orm";
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

/** Sets a new secret; the one it replaces stays valid for signing until `previousUntil` (the rotation overlap). */
export async function setEndpointSecret(
  db: Executor,
  clientId: string,
  secretEncrypted: string,
  now: Date,
  previousUntil: Date | null = null,
): Promise<WebhookEndpointRow | null> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({
      secretEncrypted,
      updatedAt: now,
      previousSecretEncrypted: previousUntil ? sql`${webhookEndpoints.secretEncrypted}` : null,
      previousSecretExpiresAt: previousUntil,
    })
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
  /** The secret before the last rotation while its overlap lasts (signed with too), else null. */
  previousSecretEncrypted: string | null;
  previousSecretExpiresAt: Date | null;
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
      return {
        delivery,
        url: endpoint?.url ?? "",
        secretEncrypted: endpoint?.secretEncrypted ?? "",
        previousSecretEncrypted: endpoint?.previousSecretEncrypted ?? null,
        previousSecretExpiresAt: endpoint?.previousSecretExpiresAt ?? null,
      };
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

/**
 * Catalog-wide role changes (#16): records ONE fan-out row per role scope (the app, or null for a global role) with
 * the ids of every user holding (unexpired) one of the roles, snapshotted now (a deleted role's assignments are gone
 * once the caller's transaction commits). One set-based statement in the caller's transaction, however many holders;
 * the deliveries are queued later by `expandFanoutBatch`. `roles` is a subquery or list yielding role ids. Returns
 * the number of holders recorded.
 */
export async function insertRoleFanouts(db: Executor, roleIds: SQL, timestamp: string, now: Date): Promise<number> {
  const result = await db.execute(sql`
    insert into webhook_fanouts (event_type, client_id, user_ids, event_timestamp)
    select 'roles.changed', r.client_id, array_agg(distinct ur.user_id order by ur.user_id), ${timestamp}::text
    from user_roles ur
    join roles r on r.id = ur.role_id
    where ur.role_id in (${roleIds})
      and (ur.expires_at is null or ur.expires_at > ${now.toISOString()}::timestamptz)
    group by r.client_id
    returning cardinality(user_ids) as holders`);
  return rowsOf<{ holders: number }>(result).reduce((sum, r) => sum + Number(r.holders), 0);
}

/**
 * Expands the oldest pending fan-out by one batch of up to `batchSize` holders, in the caller's transaction `tx`:
 * locks the row (FOR UPDATE SKIP LOCKED: two workers never take the same batch), queues the event for each holder of
 * the batch on each subscribed client the holder used (the role's app; for a global role, every app), and moves
 * `expanded` past the batch, or deletes the row after its last batch. The deliveries and the move commit together, so
 * a batch whose transaction fails is simply done again. Returns the holders handled (0: nothing pending).
 */
export async function expandFanoutBatch(db: Executor, batchSize: number): Promise<number> {
  const [job] = rowsOf<{ id: string; from: number; to: number; total: number }>(
    await db.execute(sql`
      select id, expanded::int as "from", least(expanded + ${batchSize}, cardinality(user_ids))::int as "to",
        cardinality(user_ids)::int as total
      from webhook_fanouts order by created_at, id limit 1 for update skip locked`),
  );
  if (!job) return 0;
  await db.execute(sql`
    insert into webhook_deliveries (client_id, user_id, event_type, payload)
    select e.client_id, h.user_id, f.event_type,
      jsonb_build_object('type', f.event_type, 'timestamp', f.event_timestamp,
        'data', jsonb_build_object('sub', h.user_id::text))
    from webhook_fanouts f
    cross join lateral unnest(f.user_ids[${job.from + 1}:${job.to}]) with ordinality as h(user_id, n)
    join webhook_endpoints e on e.events @> array[f.event_type]::text[]
      and (f.client_id is null or e.client_id = f.client_id)
    where f.id = ${job.id}::uuid
      and (exists (select 1 from refresh_tokens t where t.user_id = h.user_id and t.client_id = e.client_id)
        or exists (select 1 from authorization_codes c where c.user_id = h.user_id and c.client_id = e.client_id))
    order by h.n, e.client_id`);
  if (job.to >= job.total) await db.execute(sql`delete from webhook_fanouts where id = ${job.id}::uuid`);
  else await db.execute(sql`update webhook_fanouts set expanded = ${job.to} where id = ${job.id}::uuid`);
  return Math.max(1, Number(job.to) - Number(job.from));
}
