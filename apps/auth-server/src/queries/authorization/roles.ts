import { type Executor, permissions, rolePermissions, roles, userRoles } from "@tessera/db";
import { and, asc, count, eq, gt, inArray, isNull, notInArray } from "drizzle-orm";

export type RoleRow = typeof roles.$inferSelect;
export type PermissionRow = typeof permissions.$inferSelect;

const inApp = (clientId: string | null) => (clientId === null ? isNull(roles.clientId) : eq(roles.clientId, clientId));

/** Roles of one app (or the global ones, `clientId` null) by name, after the `after` name. */
export async function selectRoles(
  db: Executor,
  clientId: string | null,
  page: { limit: number; after?: string | undefined },
): Promise<RoleRow[]> {
  return db
    .select()
    .from(roles)
    .where(and(inApp(clientId), page.after === undefined ? undefined : gt(roles.name, page.after)))
    .orderBy(asc(roles.name))
    .limit(page.limit);
}

/** Every role, global ones first (the CLI's `roles list` without --client). */
export async function selectAllRoles(db: Executor, limit: number): Promise<RoleRow[]> {
  return db.select().from(roles).orderBy(asc(roles.clientId), asc(roles.name)).limit(limit);
}

export async function findRole(db: Executor, id: string): Promise<RoleRow | null> {
  const [row] = await db.select().from(roles).where(eq(roles.id, id));
  return row ?? null;
}

/** Locks the role for the rest of the transaction (changes to one role are serialized). */
export async function lockRole(db: Executor, id: string): Promise<RoleRow | null> {
  const [row] = await db.select().from(roles).where(eq(roles.id, id)).for("update");
  return row ?? null;
}

export async function findRoleByName(db: Executor, clientId: string | null, name: string): Promise<RoleRow | null> {
  const [row] = await db
    .select()
    .from(roles)
    .where(and(inApp(clientId), eq(roles.name, name)));
  return row ?? null;
}

export async function insertRole(db: Executor, row: typeof roles.$inferInsert): Promise<RoleRow> {
  const [created] = await db.insert(roles).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

export async function updateRole(
  db: Executor,
  id: string,
  values: { name?: string; description?: string; updatedAt: Date },
): Promise<RoleRow | null> {
  const [row] = await db.update(roles).set(values).where(eq(roles.id, id)).returning();
  return row ?? null;
}

/** Deletes a role (its assignments and permission links go with it, by cascade); returns how many assignments. */
export async function deleteRole(db: Executor, id: string): Promise<number | null> {
  const [assigned] = await db.select({ n: count() }).from(userRoles).where(eq(userRoles.roleId, id));
  const [row] = await db.delete(roles).where(eq(roles.id, id)).returning({ id: roles.id });
  return row ? (assigned?.n ?? 0) : null;
}

/** Permission names of each given role, sorted. */
export async function selectRolePermissionNames(db: Executor, roleIds: string[]): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>(roleIds.map((id) => [id, []]));
  if (roleIds.length === 0) return result;
  const rows = await db
    .select({ roleId: rolePermissions.roleId, name: permissions.name })
    .from(rolePermissions)
    .innerJoin(permissions, eq(permissions.id, rolePermissions.permissionId))
    .where(inArray(rolePermissions.roleId, roleIds))
    .orderBy(asc(permissions.name));
  for (const row of rows) result.get(row.roleId)?.push(row.name);
  return result;
}

/** Makes the role's permissions exactly `permissionIds`. */
export async function replaceRolePermissions(db: Executor, roleId: string, permissionIds: string[]): Promise<void> {
  await db
    .delete(rolePermissions)
    .where(
      and(
        eq(rolePermissions.roleId, roleId),
        permissionIds.length ? notInArray(rolePermissions.permissionId, permissionIds) : undefined,
      ),
    );
  if (permissionIds.length === 0) return;
  await db
    .insert(rolePermissions)
    .values(permissionIds.map((permissionId) => ({ roleId, permissionId })))
    .onConflictDoNothing();
}

export async function selectPermissions(
  db: Executor,
  clientId: string,
  page: { limit: number; after?: string | undefined },
): Promise<PermissionRow[]> {
  return db
    .select()
    .from(permissions)
    .where(
      and(eq(permissions.clientId, clientId), page.after === undefined ? undefined : gt(permissions.name, page.after)),
    )
    .orderBy(asc(permissions.name))
    .limit(page.limit);
}

export async function findPermission(db: Executor, id: string): Promise<PermissionRow | null> {
  const [row] = await db.select().from(permissions).where(eq(permissions.id, id)).for("update");
  return row ?? null;
}

/**
 * The app's permissions with these names, creating the missing ones (a concurrent creation of the same name is
 * absorbed by ON CONFLICT DO NOTHING and read back).
 */
export async function ensurePermissions(
  db: Executor,
  clientId: string,
  names: string[],
  now: Date,
): Promise<{ rows: PermissionRow[]; created: string[] }> {
  if (names.length === 0) return { rows: [], created: [] };
  const inserted = await db
    .insert(permissions)
    .values(names.map((name) => ({ clientId, name, createdAt: now, updatedAt: now })))
    .onConflictDoNothing()
    .returning({ name: permissions.name });
  const rows = await db
    .select()
    .from(permissions)
    .where(and(eq(permissions.clientId, clientId), inArray(permissions.name, names)));
  return { rows, created: inserted.map((r) => r.name) };
}

export async function insertPermission(db: Executor, row: typeof permissions.$inferInsert): Promise<PermissionRow> {
  const [created] = await db.insert(permissions).values(row).returning();
  if (!created) throw new Error("insert returned no row");
  return created;
}

export async function findPermissionByName(db: Executor, clientId: string, name: string) {
  const [row] = await db
    .select()
    .from(permissions)
    .where(and(eq(permissions.clientId, clientId), eq(permissions.name, name)));
  return row ?? null;
}

export async function updatePermission(
  db: Executor,
  id: string,
  values: { name?: string; description?: string; updatedAt: Date },
): Promise<PermissionRow | null> {
  const [row] = await db.update(permissions).set(values).where(eq(permissions.id, id)).returning();
  return row ?? null;
}

/** Deletes a permission (it leaves every role that had it); returns the names of those roles. */
export async function deletePermission(db: Executor, id: string): Promise<string[] | null> {
  const holders = await db
    .select({ name: roles.name })
    .from(rolePermissions)
    .innerJoin(roles, eq(roles.id, rolePermissions.roleId))
    .where(eq(rolePermissions.permissionId, id));
  const [row] = await db.delete(permissions).where(eq(permissions.id, id)).returning({ id: permissions.id });
  return row ? holders.map((h) => h.name).sort() : null;
}
