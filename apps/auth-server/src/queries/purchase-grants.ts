import { type Executor, entitlements, userEntitlements } from "@tessera/db";
import { and, eq, inArray, sql } from "drizzle-orm";

/**
 * The entitlement ids for these names, creating missing catalog rows (`on conflict (name) do nothing`).
 * The one place billing creates entitlements; at merge it gives way to `ensureEntitlements` of
 * libraries/authorization (#11), which also keeps the in-memory catalog current.
 */
export async function ensureEntitlementIds(db: Executor, names: readonly string[]): Promise<Map<string, string>> {
  if (names.length === 0) return new Map();
  await db
    .insert(entitlements)
    .values(names.map((name) => ({ name })))
    .onConflictDoNothing({ target: entitlements.name });
  const rows = await db
    .select({ id: entitlements.id, name: entitlements.name })
    .from(entitlements)
    .where(inArray(entitlements.name, [...names]));
  return new Map(rows.map((r) => [r.name, r.id]));
}

export interface PurchaseGrant {
  entitlementId: string;
  name: string;
  clientIds: string[] | null;
  expiresAt: Date | null;
}

/** The grants one purchase holds now (`source = 'purchase'`, `source_ref = purchase id`), with entitlement names. */
export async function grantsOfPurchase(db: Executor, purchaseId: string): Promise<PurchaseGrant[]> {
  return db
    .select({
      entitlementId: userEntitlements.entitlementId,
      name: entitlements.name,
      clientIds: userEntitlements.clientIds,
      expiresAt: userEntitlements.expiresAt,
    })
    .from(userEntitlements)
    .innerJoin(entitlements, eq(entitlements.id, userEntitlements.entitlementId))
    .where(and(eq(userEntitlements.source, "purchase"), eq(userEntitlements.sourceRef, purchaseId)));
}

export async function deletePurchaseGrants(db: Executor, purchaseId: string, entitlementIds: string[]): Promise<void> {
  if (entitlementIds.length === 0) return;
  await db
    .delete(userEntitlements)
    .where(
      and(
        eq(userEntitlements.source, "purchase"),
        eq(userEntitlements.sourceRef, purchaseId),
        inArray(userEntitlements.entitlementId, entitlementIds),
      ),
    );
}

/** Inserts or updates one grant of a purchase (unique on user, entitlement, source, source_ref). */
export async function upsertPurchaseGrant(
  db: Executor,
  input: { userId: string; purchaseId: string; grant: PurchaseGrant; now: Date },
): Promise<void> {
  await db
    .insert(userEntitlements)
    .values({
      userId: input.userId,
      entitlementId: input.grant.entitlementId,
      clientIds: input.grant.clientIds,
      expiresAt: input.grant.expiresAt,
      source: "purchase",
      sourceRef: input.purchaseId,
      createdAt: input.now,
      updatedAt: input.now,
    })
    .onConflictDoUpdate({
      target: [
        userEntitlements.userId,
        userEntitlements.entitlementId,
        userEntitlements.source,
        userEntitlements.sourceRef,
      ],
      set: { clientIds: input.grant.clientIds, expiresAt: input.grant.expiresAt, updatedAt: sql`excluded.updated_at` },
    });
}
