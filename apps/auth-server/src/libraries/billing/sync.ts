import type { Executor } from "@tessera/db";
import { z } from "zod";
import type { CoreContext } from "../../context.ts";
import {
  insertPurchaseIfAbsent,
  lockPurchase,
  type PurchaseRow,
  updatePurchase,
  userExists,
} from "../../queries/billing.ts";
import { findPlanById, type PlanRow } from "../../queries/plans.ts";
import {
  deletePurchaseGrants,
  grantsOfPurchase,
  type PurchaseGrant,
  upsertPurchaseGrant,
} from "../../queries/purchase-grants.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { ensureEntitlements } from "../authorization/entitlements.ts";
import { addSeconds } from "../clock.ts";
import { enqueueWebhook } from "../webhooks/index.ts";
import type { ProviderPurchase } from "./provider.ts";

const uuid = z.uuid();

/** Why a provider object changed nothing (returned for the log; the event is still recorded). */
export type SyncOutcome = "synced" | "unknown_user" | "unknown_plan" | "price_mismatch";

/**
 * How long the purchase's grants last, from its current state: `null` = no end, `"none"` = no grants.
 * - subscription active: until the period end when it cancels then, else open-ended (renewals keep it active);
 * - subscription past due: for the grace period after Tessera first saw it past due;
 * - one-time paid and not refunded: the plan's duration from payment, or for good;
 * - anything else (canceled, refunded, expired, unpaid): nothing.
 */
export function grantExpiry(
  plan: PlanRow,
  state: ProviderPurchase,
  row: Pick<PurchaseRow, "pastDueSince" | "paidAt">,
  graceSeconds: number,
): Date | null | "none" {
  if (state.kind === "subscription") {
    if (state.phase === "active") return state.cancelAtPeriodEnd ? state.currentPeriodEnd : null;
    if (state.phase === "past_due" && row.pastDueSince) return addSeconds(row.pastDueSince, graceSeconds);
    return "none";
  }
  if (state.phase !== "active" || state.refunded || !row.paidAt) return "none";
  return plan.durationDays ? addSeconds(row.paidAt, plan.durationDays * 86400) : null;
}

function priceMatches(plan: PlanRow, state: ProviderPurchase): boolean {
  const charged = state.charged;
  if (!charged) return true;
  if ("stripePriceId" in charged) return charged.stripePriceId === plan.stripePriceId;
  return (
    plan.cryptoPrice !== null &&
    Number(charged.amount) === Number(plan.cryptoPrice) &&
    charged.currency.toUpperCase() === (plan.cryptoCurrency ?? "").toUpperCase()
  );
}

/**
 * Brings one purchase and its grants in line with the provider's current state, inside the caller's transaction:
 * the purchase row is locked, so two webhooks about one subscription apply one after the other, and whatever order
 * events arrive in, the result is the provider's latest state. Grants are deleted, inserted or updated (never
 * toggled per event); each change is audited with the provider's event id.
 */
export async function syncPurchase(
  ctx: CoreContext,
  tx: Executor,
  input: { state: ProviderPurchase; eventId: string; meta: RequestMeta },
): Promise<SyncOutcome> {
  const { state, eventId } = input;
  const plan = uuid.safeParse(state.planId).success ? await findPlanById(tx, state.planId) : null;
  if (!plan) return "unknown_plan";
  if (!priceMatches(plan, state)) return "price_mismatch";
  if (!uuid.safeParse(state.userId).success) return "unknown_user";
  if (!(await userExists(tx, state.userId))) return "unknown_user";

  const now = ctx.clock.now();
  await insertPurchaseIfAbsent(tx, {
    userId: state.userId,
    planId: plan.id,
    provider: state.provider,
    providerRef: state.providerRef,
    kind: state.kind,
    status: state.status,
    createdAt: now,
    updatedAt: now,
  });
  const row = await lockPurchase(tx, state.provider, state.providerRef);
  if (!row) throw new Error("purchase row vanished inside its transaction");

  const next = {
    status: state.status,
    currentPeriodEnd: state.currentPeriodEnd,
    cancelAtPeriodEnd: state.cancelAtPeriodEnd,
    pastDueSince: state.phase === "past_due" ? (row.pastDueSince ?? now) : null,
    paidAt: state.phase === "active" ? (row.paidAt ?? now) : row.paidAt,
    refundedAt: state.refunded ? (row.refundedAt ?? now) : null,
    receiptUrl: state.receiptUrl ?? row.receiptUrl,
    updatedAt: now,
  };
  await updatePurchase(tx, row.id, next);

  const expiry = grantExpiry(plan, state, next, ctx.config.billing.gracePeriodSeconds);
  const ids = expiry === "none" ? new Map<string, string>() : await ensureEntitlements(ctx, tx, plan.entitlements);
  const wanted: PurchaseGrant[] =
    expiry === "none"
      ? []
      : plan.entitlements.flatMap((name) => {
          const entitlementId = ids.get(name);
          return entitlementId ? [{ entitlementId, name, clientIds: plan.clientIds, expiresAt: expiry }] : [];
        });
  const before = await grantsOfPurchase(tx, row.id);
  const removed = before.filter((b) => !wanted.some((w) => w.entitlementId === b.entitlementId));
  await deletePurchaseGrants(
    tx,
    row.id,
    removed.map((r) => r.entitlementId),
  );
  const base = { provider: state.provider, provider_event_id: eventId, purchase_id: row.id, plan: plan.name };
  for (const r of removed) {
    await audit(tx, input.meta, {
      event: "billing.entitlement_removed",
      outcome: "success",
      userId: row.userId,
      details: { ...base, entitlement: r.name, status: state.status, before: grantView(r), after: null },
    });
  }
  for (const w of wanted) {
    const old = before.find((b) => b.entitlementId === w.entitlementId);
    if (old && sameGrant(old, w)) continue;
    await upsertPurchaseGrant(tx, { userId: row.userId, purchaseId: row.id, grant: w, now });
    await audit(tx, input.meta, {
      event: old ? "billing.entitlement_updated" : "billing.entitlement_granted",
      outcome: "success",
      userId: row.userId,
      details: {
        ...base,
        entitlement: w.name,
        status: state.status,
        before: old ? grantView(old) : null,
        after: grantView(w),
      },
    });
  }
  const changed =
    removed.length > 0 ||
    wanted.some((w) => !before.some((b) => b.entitlementId === w.entitlementId && sameGrant(b, w)));
  if (changed) await enqueueWebhook(ctx, tx, { type: "entitlements.changed", userId: row.userId });
  return "synced";
}

const grantView = (g: PurchaseGrant) => ({
  client_ids: g.clientIds,
  expires_at: g.expiresAt?.toISOString() ?? null,
});

function sameGrant(a: PurchaseGrant, b: PurchaseGrant): boolean {
  return (
    (a.expiresAt?.getTime() ?? null) === (b.expiresAt?.getTime() ?? null) &&
    JSON.stringify(a.clientIds ?? null) === JSON.stringify(b.clientIds ?? null)
  );
}
