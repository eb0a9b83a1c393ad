import { type Executor, entitlements, userEntitlements } from "@tessera/db";
import { and, eq, inArray, sql } from "drizzle-orm";
import { notifyClaimsChange } from "./owners-cache.ts";

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
  const deleted = await db
    .delete(userEntitlements)
    .where(
      and(
        eq(userEntitlements.source, "purchase"),
        eq(userEntitlements.sourceRef, purchaseId),
        inArray(userEntitlements.entitlementId, entitlementIds),
      ),
    )
    .returning({ userId: userEntitlements.userId });
  // The users' claims changed: every instance's claims cache drops them at commit (owners-cache.ts).
  await notifyClaimsChange(
    db,
    deleted.map((row) => row.userId),
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
  await notifyClaimsChange(db, input.userId);
}
