import { clients, deviceCodes, type Executor } from "@tessera/db";
import { and, eq, gt, isNull, lte, or, sql } from "drizzle-orm";

export type DeviceCodeRow = typeof deviceCodes.$inferSelect;

/** Inserts a device authorization; null when the user code hash collides with a stored one (the caller draws again). */
export async function insertDeviceCode(
  db: Executor,
  row: typeof deviceCodes.$inferInsert,
): Promise<DeviceCodeRow | null> {
  const [created] = await db.insert(deviceCodes).values(row).onConflictDoNothing().returning();
  return created ?? null;
}

export async function findDeviceCodeByHash(db: Executor, deviceCodeHash: string): Promise<DeviceCodeRow | null> {
  const [row] = await db.select().from(deviceCodes).where(eq(deviceCodes.deviceCodeHash, deviceCodeHash)).limit(1);
  return row ?? null;
}

/** A pending, unexpired device authorization by its user code, with the client's name and state. */
export async function findPendingByUserCode(db: Executor, userCodeHash: string, now: Date) {
  const [row] = await db
    .select({ code: deviceCodes, clientName: clients.name, clientDisabledAt: clients.disabledAt })
    .from(deviceCodes)
    .innerJoin(clients, eq(clients.id, deviceCodes.clientId))
    .where(
      and(
        eq(deviceCodes.userCodeHash, userCodeHash),
        eq(deviceCodes.status, "pending"),
        gt(deviceCodes.expiresAt, now),
      ),
    )
    .limit(1);
  return row ?? null;
}

/**
 * Records a poll when the device waited long enough since its previous one: one conditional UPDATE, so of parallel
 * polls at most one passes. Null when the poll came too early (the caller answers slow_down).
 */
export async function recordPoll(db: Executor, id: string, now: Date): Promise<DeviceCodeRow | null> {
  const [row] = await db
    .update(deviceCodes)
    .set({ lastPolledAt: now })
    .where(
      and(
        eq(deviceCodes.id, id),
        or(
          isNull(deviceCodes.lastPolledAt),
          lte(
            deviceCodes.lastPolledAt,
            sql`${now.toISOString()}::timestamptz - make_interval(secs => ${deviceCodes.intervalSeconds})`,
          ),
        ),
      ),
    )
    .returning();
  return row ?? null;
}

/** RFC 8628 3.5 slow_down: the interval grows by 5 seconds for this and every later poll. */
export async function slowDown(db: Executor, id: string, now: Date): Promise<void> {
  await db
    .update(deviceCodes)
    .set({ lastPolledAt: now, intervalSeconds: sql`${deviceCodes.intervalSeconds} + 5` })
    .where(eq(deviceCodes.id, id));
}

/** Approves or denies a pending, unexpired authorization; null when it was decided (or expired) meanwhile. */
export async function decideDeviceCode(
  db: Executor,
  id: string,
  decision: { status: "approved" | "denied"; userId: string; sessionId: string; amr: string[]; now: Date },
): Promise<DeviceCodeRow | null> {
  const [row] = await db
    .update(deviceCodes)
    .set({
      status: decision.status,
      userId: decision.userId,
      approvedFromSessionId: decision.sessionId,
      amr: decision.amr,
      decidedAt: decision.now,
    })
    .where(and(eq(deviceCodes.id, id), eq(deviceCodes.status, "pending"), gt(deviceCodes.expiresAt, decision.now)))
    .returning();
  return row ?? null;
}

/** Redeems an approved authorization: exactly one of parallel polls gets the row. */
export async function consumeDeviceCode(db: Executor, id: string, now: Date): Promise<DeviceCodeRow | null> {
  const [row] = await db
    .update(deviceCodes)
    .set({ status: "consumed", consumedAt: now })
    .where(and(eq(deviceCodes.id, id), eq(deviceCodes.status, "approved"), gt(deviceCodes.expiresAt, now)))
    .returning();
  return row ?? null;
}
