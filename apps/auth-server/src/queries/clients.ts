import { clients, type Executor } from "@tessera/db";
import { and, asc, eq, gt, isNull, sql } from "drizzle-orm";

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
  const [row] = await db
    .select()
    .from(clients)
    .where(and(eq(clients.clientId, clientId), isNull(clients.disabledAt)))
    .limit(1);
  return row ?? null;
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
