import type { Executor } from "@tessera/db";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { selectClientNames } from "../../queries/authorization/grants.ts";
import {
  deleteRole as deleteRoleRow,
  ensurePermissions,
  findRoleByName,
  insertRole,
  lockRole,
  type RoleRow,
  replaceRolePermissions,
  selectAllRoles,
  selectRolePermissionNames,
  selectRoles,
  updateRole as updateRoleRow,
} from "../../queries/authorization/roles.ts";
import { parse } from "../../validation.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { enqueueRolesChanged } from "../webhooks/index.ts";
import { appRowId, catalogChange, type RoleScope } from "./change.ts";
import { changeDetails, type Page, roleCreateSchema, roleUpdateSchema, UUID } from "./input.ts";

/** A role as the admin API and the CLI show it. */
export interface RoleView {
  id: string;
  /** The app's public client_id; null for a global role. */
  client_id: string | null;
  name: string;
  description: string;
  permissions: string[];
  created_at: string;
  updated_at: string;
}

function view(role: RoleRow, clientId: string | null, permissions: string[]): RoleView {
  return {
    id: role.id,
    client_id: clientId,
    name: role.name,
    description: role.description,
    permissions,
    created_at: role.createdAt.toISOString(),
    updated_at: role.updatedAt.toISOString(),
  };
}

/** The role `roleId` of that app, locked; ROLE_NOT_FOUND for a malformed id, another app's role or none. */
async function lockedRoleOf(db: Executor, appId: string | null, roleId: string): Promise<RoleRow> {
  const role = UUID.test(roleId) ? await lockRole(db, roleId) : null;
  if (!role || role.clientId !== appId) throw new AppError("ROLE_NOT_FOUND");
  return role;
}

/** Permissions belong to an app: a global role has none (each app's roles bundle that app's permissions). */
function checkPermissionsAllowed(appId: string | null, permissions: string[] | undefined) {
  if (appId === null && permissions?.length) {
    throw new AppError("VALIDATION_FAILED", undefined, [
      { field: "permissions", message: "a global role has no permissions; permissions belong to one app" },
    ]);
  }
}

/** Creates a role in an app (or a global one), with that app's permissions, created as needed. */
export async function createRole(ctx: CoreContext, scope: RoleScope, input: unknown, actor: Actor): Promise<RoleView> {
  const valid = parse(roleCreateSchema, input);
  const appId = await appRowId(ctx.db, scope);
  const permissionNames = [...new Set(valid.permissions ?? [])].sort();
  checkPermissionsAllowed(appId, permissionNames);
  return catalogChange(ctx, "ROLE_NAME_TAKEN", async (tx, now) => {
    if (await findRoleByName(tx, appId, valid.name)) throw new AppError("ROLE_NAME_TAKEN");
    const role = await insertRole(tx, {
      clientId: appId,
      name: valid.name,
      description: valid.description ?? "",
      createdAt: now,
      updatedAt: now,
    });
    const { rows, created } = appId
      ? await ensurePermissions(tx, appId, permissionNames, now)
      : { rows: [], created: [] };
    await replaceRolePermissions(
      tx,
      role.id,
      rows.map((p) => p.id),
    );
    const after = view(role, scope, permissionNames);
    await audit(tx, actor.meta, {
      event: "admin.role_created",
      outcome: "success",
      actorId: actor.actorId,
      clientId: scope,
      details: changeDetails(actor, null, after, { permissionsCreated: created }),
    });
    return after;
  });
}

/** Renames a role, changes its description, or sets its permissions (the whole list). Its id never changes. */
export async function updateRole(
  ctx: CoreContext,
  scope: RoleScope,
  roleId: string,
  input: unknown,
  actor: Actor,
): Promise<RoleView> {
  const valid = parse(roleUpdateSchema, input);
  const appId = await appRowId(ctx.db, scope);
  checkPermissionsAllowed(appId, valid.permissions);
  return catalogChange(ctx, "ROLE_NAME_TAKEN", async (tx, now) => {
    const role = await lockedRoleOf(tx, appId, roleId);
    const before = view(role, scope, (await selectRolePermissionNames(tx, [role.id])).get(role.id) ?? []);
    if (valid.name !== undefined && valid.name !== role.name && (await findRoleByName(tx, appId, valid.name))) {
      throw new AppError("ROLE_NAME_TAKEN");
    }
    const updated =
      (await updateRoleRow(tx, role.id, {
        ...(valid.name !== undefined ? { name: valid.name } : {}),
        ...(valid.description !== undefined ? { description: valid.description } : {}),
        updatedAt: now,
      })) ?? role;
    let permissionNames = before.permissions;
    let created: string[] = [];
    if (valid.permissions !== undefined && appId !== null) {
      permissionNames = [...new Set(valid.permissions)].sort();
      const ensured = await ensurePermissions(tx, appId, permissionNames, now);
      created = ensured.created;
      await replaceRolePermissions(
        tx,
        role.id,
        ensured.rows.map((p) => p.id),
      );
      // Holders' permissions changed: every app they use hears roles.changed (#16).
      if (permissionNames.join("\n") !== [...before.permissions].sort().join("\n")) {
        await enqueueRolesChanged(ctx, tx, { roleIds: [role.id] });
      }
    }
    const after = view(updated, scope, permissionNames);
    await audit(tx, actor.meta, {
      event: "admin.role_updated",
      outcome: "success",
      actorId: actor.actorId,
      clientId: scope,
      details: changeDetails(actor, before, after, created.length ? { permissionsCreated: created } : {}),
    });
    return after;
  });
}

/** Deletes a role; every assignment of it goes too. */
export async function deleteRole(
  ctx: CoreContext,
  scope: RoleScope,
  roleId: string,
  actor: Actor,
): Promise<{ role: RoleView; assignments_removed: number }> {
  const appId = await appRowId(ctx.db, scope);
  return catalogChange(ctx, "ROLE_NAME_TAKEN", async (tx) => {
    const role = await lockedRoleOf(tx, appId, roleId);
    const before = view(role, scope, (await selectRolePermissionNames(tx, [role.id])).get(role.id) ?? []);
    // Before the delete (its assignments cascade): every holder's apps hear roles.changed (#16).
    await enqueueRolesChanged(ctx, tx, { roleIds: [role.id] });
    const removed = (await deleteRoleRow(tx, role.id)) ?? 0;
    await audit(tx, actor.meta, {
      event: "admin.role_deleted",
      outcome: "success",
      actorId: actor.actorId,
      clientId: scope,
      details: changeDetails(actor, before, null, { assignmentsRemoved: removed }),
    });
    return { role: before, assignments_removed: removed };
  });
}

/** A page of an app's roles (or the global ones), by name. */
export async function listRoles(ctx: CoreContext, scope: RoleScope, page: Page): Promise<RoleView[]> {
  const appId = await appRowId(ctx.db, scope);
  const rows = await selectRoles(ctx.db, appId, page);
  const permissions = await selectRolePermissionNames(
    ctx.db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => view(r, scope, permissions.get(r.id) ?? []));
}

/** Every role of every app (global ones first), at most `limit`. */
export async function listAllRoles(ctx: CoreContext, limit: number): Promise<RoleView[]> {
  const rows = await selectAllRoles(ctx.db, limit);
  const [permissions, apps] = await Promise.all([
    selectRolePermissionNames(
      ctx.db,
      rows.map((r) => r.id),
    ),
    selectClientNames(
      ctx.db,
      rows.flatMap((r) => (r.clientId ? [r.clientId] : [])),
    ),
  ]);
  return rows.map((r) =>
    view(r, r.clientId ? (apps.get(r.clientId)?.clientId ?? null) : null, permissions.get(r.id) ?? []),
  );
}

/** A role by app and name (the CLI names roles), or ROLE_NOT_FOUND. */
export async function roleByName(ctx: CoreContext, scope: RoleScope, name: string): Promise<RoleView> {
  const appId = await appRowId(ctx.db, scope);
  const role = typeof name === "string" && name.length <= 100 ? await findRoleByName(ctx.db, appId, name) : null;
  if (!role) throw new AppError("ROLE_NOT_FOUND");
  const permissions = await selectRolePermissionNames(ctx.db, [role.id]);
  return view(role, scope, permissions.get(role.id) ?? []);
}
