import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  deletePermission as deletePermissionRow,
  findPermission,
  findPermissionByName,
  insertPermission,
  type PermissionRow,
  selectPermissions,
  updatePermission as updatePermissionRow,
} from "../../queries/authorization/roles.ts";
import { parse } from "../../validation.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { enqueueRolesChanged } from "../webhooks/index.ts";
import { appRowId, catalogChange } from "./change.ts";
import { changeDetails, type Page, permissionCreateSchema, permissionUpdateSchema, UUID } from "./input.ts";

/** A permission as the admin API and the CLI show it. */
export interface PermissionView {
  id: string;
  client_id: string;
  name: string;
  description: string;
  created_at: string;
  updated_at: string;
}

const view = (p: PermissionRow, clientId: string): PermissionView => ({
  id: p.id,
  client_id: clientId,
  name: p.name,
  description: p.description,
  created_at: p.createdAt.toISOString(),
  updated_at: p.updatedAt.toISOString(),
});

export async function createPermission(
  ctx: CoreContext,
  clientId: string,
  input: unknown,
  actor: Actor,
): Promise<PermissionView> {
  const valid = parse(permissionCreateSchema, input);
  const appId = (await appRowId(ctx.db, clientId)) as string;
  return catalogChange(ctx, "PERMISSION_NAME_TAKEN", async (tx, now) => {
    if (await findPermissionByName(tx, appId, valid.name)) throw new AppError("PERMISSION_NAME_TAKEN");
    const created = await insertPermission(tx, {
      clientId: appId,
      name: valid.name,
      description: valid.description ?? "",
      createdAt: now,
      updatedAt: now,
    });
    const after = view(created, clientId);
    await audit(tx, actor.meta, {
      event: "admin.permission_created",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: changeDetails(actor, null, after),
    });
    return after;
  });
}

/** The app's permission `id`, locked; PERMISSION_NOT_FOUND for a malformed id, another app's permission or none. */
async function permissionOf(tx: Parameters<Parameters<typeof catalogChange>[2]>[0], appId: string, id: string) {
  const permission = UUID.test(id) ? await findPermission(tx, id) : null;
  if (!permission || permission.clientId !== appId) throw new AppError("PERMISSION_NOT_FOUND");
  return permission;
}

/** Renames a permission or changes its description; roles keep it (they refer to its id). */
export async function updatePermission(
  ctx: CoreContext,
  clientId: string,
  id: string,
  input: unknown,
  actor: Actor,
): Promise<PermissionView> {
  const valid = parse(permissionUpdateSchema, input);
  const appId = (await appRowId(ctx.db, clientId)) as string;
  return catalogChange(ctx, "PERMISSION_NAME_TAKEN", async (tx, now) => {
    const permission = await permissionOf(tx, appId, id);
    if (
      valid.name !== undefined &&
      valid.name !== permission.name &&
      (await findPermissionByName(tx, appId, valid.name))
    ) {
      throw new AppError("PERMISSION_NAME_TAKEN");
    }
    const updated =
      (await updatePermissionRow(tx, permission.id, {
        ...(valid.name !== undefined ? { name: valid.name } : {}),
        ...(valid.description !== undefined ? { description: valid.description } : {}),
        updatedAt: now,
      })) ?? permission;
    const after = view(updated, clientId);
    // A renamed permission reaches apps under its new name: holders of the roles that have it hear roles.changed.
    if (updated.name !== permission.name) await enqueueRolesChanged(ctx, tx, { permissionId: permission.id });
    await audit(tx, actor.meta, {
      event: "admin.permission_updated",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: changeDetails(actor, view(permission, clientId), after),
    });
    return after;
  });
}

/** Deletes a permission: every role of the app that had it loses it. */
export async function deletePermission(
  ctx: CoreContext,
  clientId: string,
  id: string,
  actor: Actor,
): Promise<{ permission: PermissionView; removed_from_roles: string[] }> {
  const appId = (await appRowId(ctx.db, clientId)) as string;
  return catalogChange(ctx, "PERMISSION_NAME_TAKEN", async (tx) => {
    const permission = await permissionOf(tx, appId, id);
    // Before the delete: holders of the roles that had it hear roles.changed (#16).
    await enqueueRolesChanged(ctx, tx, { permissionId: permission.id });
    const roles = (await deletePermissionRow(tx, permission.id)) ?? [];
    const before = view(permission, clientId);
    await audit(tx, actor.meta, {
      event: "admin.permission_deleted",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: changeDetails(actor, before, null, { removedFromRoles: roles }),
    });
    return { permission: before, removed_from_roles: roles };
  });
}

export async function listPermissions(ctx: CoreContext, clientId: string, page: Page): Promise<PermissionView[]> {
  const appId = (await appRowId(ctx.db, clientId)) as string;
  return (await selectPermissions(ctx.db, appId, page)).map((p) => view(p, clientId));
}
