import type { Executor } from "@tessera/db";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { bumpCatalogVersion } from "../../queries/authorization/catalog.ts";
import {
  deleteAdminGrant,
  ensureEntitlementRows,
  findAdminGrant,
  findEntitlementByName,
  findLiveUser,
  type GrantListing,
  selectClientNames,
  selectClientRowIds,
  selectUserGrants,
  type UserEntitlementRow,
  upsertAdminGrant,
} from "../../queries/authorization/grants.ts";
import { parse } from "../../validation.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { enqueueWebhook } from "../webhooks/index.ts";
import { futureExpiry, userChange } from "./assignments.ts";
import { changeDetails, grantSchema, NAME, type Page, UUID } from "./input.ts";

/**
 * The entitlement catalog ids for these names, creating the missing rows (name → id). For other areas that grant
 * entitlements (payments writes `user_entitlements` rows with `source = 'purchase'` itself): call it inside the
 * transaction that writes the grants. When it creates a name it bumps the catalog version in that transaction, so
 * every instance knows the new name by the next token request. Names must match `NAME` (TypeError otherwise: a
 * programming error, never user input).
 */
export async function ensureEntitlements(
  ctx: CoreContext,
  tx: Executor,
  names: string[],
): Promise<Map<string, string>> {
  const unique = [...new Set(names)].sort();
  const bad = unique.find((n) => !NAME.test(n));
  if (bad !== undefined) throw new TypeError(`invalid entitlement name: ${JSON.stringify(bad.slice(0, 120))}`);
  const now = ctx.clock.now();
  const { rows, created } = await ensureEntitlementRows(tx, unique, now);
  if (created.length) await bumpCatalogVersion(tx, now);
  return new Map(rows.map((r) => [r.name, r.id]));
}

/** One grant of an entitlement to a user, as the admin API, the CLI and the account page show it. */
export interface EntitlementGrantView {
  id: string;
  name: string;
  /** Public client_ids the grant is limited to; null = every app. */
  client_ids: string[] | null;
  /** The names of those apps (for people); null = every app. */
  client_names: string[] | null;
  expires_at: string | null;
  source: "admin" | "purchase";
  /** The purchase id for `purchase`; empty for `admin`. */
  source_ref: string;
  active: boolean;
}

export async function grantViews(db: Executor, grants: GrantListing[], now: Date): Promise<EntitlementGrantView[]> {
  const apps = await selectClientNames(
    db,
    grants.flatMap((g) => g.clientIds ?? []),
  );
  return grants.map((g) => ({
    id: g.id,
    name: g.name,
    client_ids: g.clientIds?.map((id) => apps.get(id)?.clientId ?? id) ?? null,
    client_names: g.clientIds?.map((id) => apps.get(id)?.name ?? "an app") ?? null,
    expires_at: g.expiresAt?.toISOString() ?? null,
    source: g.source,
    source_ref: g.sourceRef,
    active: g.expiresAt === null || g.expiresAt > now,
  }));
}

const grantState = (row: UserEntitlementRow | null, clientIds: string[] | null) =>
  row ? { client_ids: clientIds, expires_at: row.expiresAt?.toISOString() ?? null } : null;

/**
 * Grants an entitlement to a user as an admin (source `admin`), optionally limited to some apps (public client_ids)
 * and expiring. Granting it again replaces the limits and the expiry of the admin grant; purchase grants are untouched.
 */
export async function grantEntitlement(
  ctx: CoreContext,
  userId: string,
  input: unknown,
  actor: Actor,
): Promise<EntitlementGrantView> {
  const valid = parse(grantSchema, input);
  const publicIds = valid.clientIds ? [...new Set(valid.clientIds)].sort() : null;
  const rowIds = publicIds ? await selectClientRowIds(ctx.db, publicIds) : null;
  const unknown = publicIds?.filter((id) => !rowIds?.has(id)) ?? [];
  if (unknown.length) {
    throw new AppError("CLIENT_NOT_FOUND", `No client with the client_id ${unknown[0]?.slice(0, 128)}.`);
  }
  return userChange(ctx, userId, async (tx, now) => {
    const expiresAt = futureExpiry(valid.expiresAt, now);
    const ids = await ensureEntitlements(ctx, tx, [valid.name]);
    const entitlementId = ids.get(valid.name) as string;
    const before = await findAdminGrant(tx, userId, entitlementId);
    const clientIds = publicIds ? publicIds.map((id) => rowIds?.get(id) as string) : null;
    const saved = await upsertAdminGrant(tx, {
      userId,
      entitlementId,
      clientIds,
      expiresAt,
      grantedBy: actor.actorId,
      now,
    });
    const beforeApps = before?.clientIds
      ? [...(await selectClientNames(tx, before.clientIds)).values()].map((a) => a.clientId).sort()
      : null;
    await audit(tx, actor.meta, {
      event: "admin.entitlement_granted",
      outcome: "success",
      actorId: actor.actorId,
      userId,
      details: changeDetails(actor, grantState(before, beforeApps), grantState(saved, publicIds), { name: valid.name }),
    });
    await enqueueWebhook(ctx, tx, { type: "entitlements.changed", userId });
    const [view] = await grantViews(tx, [{ ...saved, name: valid.name }], now);
    return view as EntitlementGrantView;
  });
}

/** Removes the ADMIN grant of an entitlement; grants from purchases stay (they end with the purchase). */
export async function revokeEntitlement(
  ctx: CoreContext,
  userId: string,
  name: string,
  actor: Actor,
): Promise<{ name: string; removed: true }> {
  if (typeof name !== "string" || !NAME.test(name)) throw new AppError("ENTITLEMENT_NOT_GRANTED");
  return userChange(ctx, userId, async (tx) => {
    const entitlement = await findEntitlementByName(tx, name);
    const removed = entitlement ? await deleteAdminGrant(tx, userId, entitlement.id) : null;
    if (!removed) throw new AppError("ENTITLEMENT_NOT_GRANTED");
    await audit(tx, actor.meta, {
      event: "admin.entitlement_revoked",
      outcome: "success",
      actorId: actor.actorId,
      userId,
      details: changeDetails(
        actor,
        { client_ids_internal: removed.clientIds, expires_at: removed.expiresAt?.toISOString() ?? null },
        null,
        { name },
      ),
    });
    await enqueueWebhook(ctx, tx, { type: "entitlements.changed", userId });
    return { name, removed: true };
  });
}

/** A page of the user's entitlement grants, every source, expired ones included (marked inactive). */
export async function listUserEntitlements(
  ctx: CoreContext,
  userId: string,
  page: Page,
): Promise<EntitlementGrantView[]> {
  if (typeof userId !== "string" || !UUID.test(userId)) throw new AppError("USER_NOT_FOUND");
  if (!(await findLiveUser(ctx.db, userId))) throw new AppError("USER_NOT_FOUND");
  return grantViews(ctx.db, await selectUserGrants(ctx.db, userId, page), ctx.clock.now());
}
