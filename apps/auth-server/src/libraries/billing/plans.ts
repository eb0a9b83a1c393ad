import { z } from "zod";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { findClientByClientId } from "../../queries/clients.ts";
import {
  archivePlan,
  clientIdsByInternalId,
  findPlanByName,
  insertPlan,
  listPlans,
  type PlanRow,
  updatePlanRow,
} from "../../queries/plans.ts";
import { parse } from "../../validation.ts";
import { audit } from "../audit.ts";
import { ensureEntitlements } from "../authorization/entitlements.ts";
import type { Actor } from "../clients/index.ts";
import { provider } from "./index.ts";

export type { PlanRow } from "../../queries/plans.ts";

const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._:-]{0,62}$/, { message: "lower-case letters, digits, '.', '_', ':' or '-', at most 63" });

export const planNameSchema = slug;

export const planInputSchema = z
  .strictObject({
    name: slug,
    description: z.string().max(500).optional(),
    stripe_price: z
      .string()
      .regex(/^price_[A-Za-z0-9]{1,100}$/, { message: "expected a Stripe price id (price_…)" })
      .optional(),
    entitlements: z.array(slug).min(1).max(20),
    clients: z.array(z.string().min(1).max(200)).max(50).optional(),
    duration_days: z.number().int().min(1).max(3650).optional(),
    crypto_price: z
      .string()
      .regex(/^\d{1,12}(\.\d{1,8})?$/, { message: "expected a decimal amount such as 5.00" })
      .refine((v) => Number(v) > 0, { message: "must be more than 0" })
      .optional(),
    crypto_currency: z
      .string()
      .regex(/^[A-Z]{3,5}$/, { message: "expected a currency code such as USD or BTC" })
      .optional(),
  })
  .refine((v) => v.stripe_price || v.crypto_price, { message: "give a Stripe price, a crypto price, or both" })
  .refine((v) => !v.crypto_price === !v.crypto_currency, {
    message: "crypto_price and crypto_currency go together",
    path: ["crypto_currency"],
  });

export type PlanInput = z.input<typeof planInputSchema>;

/** A plan as the admin API and the CLI show it (public client ids, snake_case). */
export async function planView(ctx: CoreContext, plan: PlanRow) {
  return {
    id: plan.id,
    name: plan.name,
    description: plan.description,
    kind: plan.kind,
    stripe_price: plan.stripePriceId,
    duration_days: plan.durationDays,
    crypto_price: plan.cryptoPrice,
    crypto_currency: plan.cryptoCurrency,
    entitlements: plan.entitlements,
    clients: plan.clientIds ? await publicClientIds(ctx, plan.clientIds) : null,
    archived_at: plan.archivedAt?.toISOString() ?? null,
    created_at: plan.createdAt.toISOString(),
  };
}

function publicClientIds(ctx: CoreContext, internalIds: string[]): Promise<string[]> {
  return clientIdsByInternalId(ctx.db, internalIds);
}

/**
 * Creates a plan. Its kind comes from the Stripe price's type (recurring = subscription), read from Stripe;
 * crypto-only plans are one-time. Entitlement names are created in the catalog as needed. Audited.
 */
export async function createPlan(ctx: CoreContext, raw: unknown, actor: Actor): Promise<PlanRow> {
  const input = parse(planInputSchema, raw);
  let kind: PlanRow["kind"] = "one_time";
  if (input.stripe_price) {
    const priceKind = provider(ctx.config, "stripe").priceKind;
    const found = priceKind ? await priceKind(input.stripe_price) : null;
    if (!found) {
      throw new AppError("VALIDATION_FAILED", undefined, [
        { field: "stripe_price", message: "Stripe has no such price" },
      ]);
    }
    kind = found;
  }
  if (kind === "subscription" && input.duration_days !== undefined) {
    throw new AppError("VALIDATION_FAILED", undefined, [
      { field: "duration_days", message: "only one-time plans have a duration; a subscription lasts while paid" },
    ]);
  }
  const clientIds: string[] = [];
  for (const [i, clientId] of (input.clients ?? []).entries()) {
    const client = await findClientByClientId(ctx.db, clientId);
    if (!client)
      throw new AppError("CLIENT_NOT_FOUND", undefined, [{ field: `clients.${i}`, message: "no such client" }]);
    if (!clientIds.includes(client.id)) clientIds.push(client.id);
  }
  const now = ctx.clock.now();
  return ctx.db.transaction(async (tx) => {
    const entitlements = [...new Set(input.entitlements)];
    await ensureEntitlements(ctx, tx, entitlements);
    const plan = await insertPlan(tx, {
      name: input.name,
      description: input.description ?? "",
      kind,
      stripePriceId: input.stripe_price ?? null,
      durationDays: input.duration_days ?? null,
      cryptoPrice: input.crypto_price ?? null,
      cryptoCurrency: input.crypto_currency ?? null,
      entitlements,
      clientIds: clientIds.length ? clientIds : null,
      createdAt: now,
      updatedAt: now,
    });
    if (!plan) throw new AppError("PLAN_EXISTS");
    await audit(tx, actor.meta, {
      event: "billing.plan_created",
      outcome: "success",
      actorId: actor.actorId,
      details: { plan: plan.name, before: null, after: auditView(plan), via: actor.via },
    });
    return plan;
  });
}

export async function getPlan(ctx: CoreContext, name: string): Promise<PlanRow> {
  const plan = slug.safeParse(name).success ? await findPlanByName(ctx.db, name) : null;
  if (!plan) throw new AppError("PLAN_NOT_FOUND");
  return plan;
}

export function plansList(ctx: CoreContext, includeArchived = false): Promise<PlanRow[]> {
  return listPlans(ctx.db, { includeArchived });
}

/** Takes a plan off sale; purchases already made keep their grants. Audited. */
export async function archivePlanByName(ctx: CoreContext, name: string, actor: Actor): Promise<PlanRow> {
  const plan = await getPlan(ctx, name);
  if (plan.archivedAt) throw new AppError("PLAN_ARCHIVED");
  return ctx.db.transaction(async (tx) => {
    const archived = await archivePlan(tx, plan.id, ctx.clock.now());
    if (!archived) throw new AppError("PLAN_ARCHIVED");
    await audit(tx, actor.meta, {
      event: "billing.plan_archived",
      outcome: "success",
      actorId: actor.actorId,
      details: { plan: plan.name, before: auditView(plan), after: auditView(archived), via: actor.via },
    });
    return archived;
  });
}

const auditView = (plan: PlanRow) => ({
  kind: plan.kind,
  stripe_price: plan.stripePriceId,
  crypto_price: plan.cryptoPrice,
  crypto_currency: plan.cryptoCurrency,
  duration_days: plan.durationDays,
  entitlements: plan.entitlements,
  client_ids: plan.clientIds,
  archived_at: plan.archivedAt?.toISOString() ?? null,
});

const planUpdateSchema = z.strictObject({
  description: z.string().max(500).optional(),
  entitlements: z.array(slug).min(1).max(20).optional(),
  /** Public client ids; an empty list = every app. */
  clients: z.array(z.string().min(1).max(200)).max(50).optional(),
});

/**
 * Changes a plan's description, entitlements or apps (prices and kind stay: they are the provider's). Purchases made
 * from now on grant the new entitlements; grants already made are untouched. Audited.
 */
export async function updatePlan(ctx: CoreContext, name: string, raw: unknown, actor: Actor): Promise<PlanRow> {
  const input = parse(planUpdateSchema, raw);
  const plan = await getPlan(ctx, name);
  if (plan.archivedAt) throw new AppError("PLAN_ARCHIVED");
  let clientIds = plan.clientIds;
  if (input.clients !== undefined) {
    const ids: string[] = [];
    for (const [i, clientId] of input.clients.entries()) {
      const client = await findClientByClientId(ctx.db, clientId);
      if (!client)
        throw new AppError("CLIENT_NOT_FOUND", undefined, [{ field: `clients.${i}`, message: "no such client" }]);
      if (!ids.includes(client.id)) ids.push(client.id);
    }
    clientIds = ids.length ? ids : null;
  }
  return ctx.db.transaction(async (tx) => {
    const entitlements = input.entitlements ? [...new Set(input.entitlements)] : plan.entitlements;
    if (input.entitlements) await ensureEntitlements(ctx, tx, entitlements);
    const updated = await updatePlanRow(
      tx,
      plan.id,
      { description: input.description ?? plan.description, entitlements, clientIds },
      ctx.clock.now(),
    );
    if (!updated) throw new AppError("PLAN_ARCHIVED");
    await audit(tx, actor.meta, {
      event: "billing.plan_updated",
      outcome: "success",
      actorId: actor.actorId,
      details: { plan: plan.name, before: auditView(plan), after: auditView(updated), via: actor.via },
    });
    return updated;
  });
}
