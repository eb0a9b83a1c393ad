import { billingCustomers, billingEvents, type Executor, plans, purchases, users } from "@tessera/db";
import { and, desc, eq } from "drizzle-orm";

export type PurchaseRow = typeof purchases.$inferSelect;
export type NewPurchaseRow = typeof purchases.$inferInsert;
export type Provider = PurchaseRow["provider"];

/** Records a webhook delivery; false when this event id was already recorded (a replay). */
export async function recordBillingEvent(
  db: Executor,
  row: { provider: Provider; eventId: string; type: string; receivedAt: Date },
): Promise<boolean> {
  const inserted = await db
    .insert(billingEvents)
    .values(row)
    .onConflictDoNothing()
    .returning({ eventId: billingEvents.eventId });
  return inserted.length > 0;
}

/** Whether a webhook delivery was already recorded (cheap check before asking the provider anything). */
export async function billingEventRecorded(db: Executor, provider: Provider, eventId: string): Promise<boolean> {
  const [row] = await db
    .select({ eventId: billingEvents.eventId })
    .from(billingEvents)
    .where(and(eq(billingEvents.provider, provider), eq(billingEvents.eventId, eventId)))
    .limit(1);
  return Boolean(row);
}

export async function findCustomer(db: Executor, userId: string, provider: Provider): Promise<string | null> {
  const [row] = await db
    .select({ customerId: billingCustomers.customerId })
    .from(billingCustomers)
    .where(and(eq(billingCustomers.userId, userId), eq(billingCustomers.provider, provider)))
    .limit(1);
  return row?.customerId ?? null;
}

/** Links a provider customer to the user; returns the customer id that won when another request linked one first. */
export async function insertCustomer(
  db: Executor,
  row: { userId: string; provider: Provider; customerId: string; createdAt: Date },
): Promise<string> {
  await db.insert(billingCustomers).values(row).onConflictDoNothing();
  return (await findCustomer(db, row.userId, row.provider)) ?? row.customerId;
}

/** Forgets every provider customer of the user; returns what was linked, so the caller can detach at the provider. */
export async function deleteCustomers(
  db: Executor,
  userId: string,
): Promise<{ provider: Provider; customerId: string }[]> {
  return db
    .delete(billingCustomers)
    .where(eq(billingCustomers.userId, userId))
    .returning({ provider: billingCustomers.provider, customerId: billingCustomers.customerId });
}

/** The purchase for a provider object, locked for the rest of the transaction (two webhooks of one object queue). */
export async function lockPurchase(db: Executor, provider: Provider, providerRef: string): Promise<PurchaseRow | null> {
  const [row] = await db
    .select()
    .from(purchases)
    .where(and(eq(purchases.provider, provider), eq(purchases.providerRef, providerRef)))
    .for("update")
    .limit(1);
  return row ?? null;
}

/** Inserts the purchase row if absent (racing webhooks: one wins, the other then locks the winner's row). */
export async function insertPurchaseIfAbsent(db: Executor, row: NewPurchaseRow): Promise<void> {
  await db
    .insert(purchases)
    .values(row)
    .onConflictDoNothing({ target: [purchases.provider, purchases.providerRef] });
}

export async function updatePurchase(db: Executor, id: string, values: Partial<NewPurchaseRow>): Promise<void> {
  await db.update(purchases).set(values).where(eq(purchases.id, id));
}

export interface PurchaseView extends PurchaseRow {
  planName: string;
}

export async function purchasesOfUser(db: Executor, userId: string): Promise<PurchaseView[]> {
  const rows = await db
    .select({ purchase: purchases, planName: plans.name })
    .from(purchases)
    .innerJoin(plans, eq(plans.id, purchases.planId))
    .where(eq(purchases.userId, userId))
    .orderBy(desc(purchases.createdAt))
    .limit(200);
  return rows.map((r) => ({ ...r.purchase, planName: r.planName }));
}

export async function userExists(db: Executor, userId: string): Promise<boolean> {
  const [row] = await db.select({ id: users.id }).from(users).where(eq(users.id, userId)).limit(1);
  return Boolean(row);
}
