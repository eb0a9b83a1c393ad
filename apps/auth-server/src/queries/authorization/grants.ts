import { clients, type Executor, entitlements, roles, userEntitlements, userRoles, users } from "@tessera/db";
import { and, asc, eq, gt, inArray } from "drizzle-orm";
import { notifyClaimsChange } from "../owners-cache.ts";

export type UserRoleRow = typeof userRoles.$inferSelect;
export type UserEntitlementRow = typeof userEntitlements.$inferSelect;

/** A user who is not deleted, without locking (listings). */
export async function findLiveUser(db: Executor, userId: string): Promise<{ id: string } | null> {
  const [row] = await db.select({ id: users.id, deletedAt: users.deletedAt }).from(users).where(eq(users.id, userId));
  return row && !row.deletedAt ? { id: row.id } : null;
}

/**
 * Locks the user's row (FOR NO KEY UPDATE: sign-ins and other inserts that reference the user still go ahead) so
 * that the authorization changes of one user are serialized and each audit row's "before" is exactly the state the
 * change replaced. Null for no such user, or one deleted.
 */
export async function lockUserForAuthorization(db: Executor, userId: string): Promise<{ id: string } | null> {
  const [row] = await db
    .select({ id: users.id, deletedAt: users.deletedAt })
    .from(users)
    .where(eq(users.id, userId))
    .for("no key update");
  return row && !row.deletedAt ? { id: row.id } : null;
}

export async function findUserRole(db: Executor, userId: string, roleId: string): Promise<UserRoleRow | null> {
  const [row] = await db
    .select()
    .from(userRoles)
    .where(and(eq(userRoles.userId, userId), eq(userRoles.roleId, roleId)));
  return row ?? null;
}

// Every write below changes the user's claims: each tells every instance's claims cache (owners-cache.ts) at commit,
// after the write (so even outside a transaction no instance can read the old rows after being told).

/** Assigns, or re-assigns with the new expiry. */
export async function upsertUserRole(db: Executor, row: typeof userRoles.$inferInsert): Promise<UserRoleRow> {
  const [saved] = await db
    .insert(userRoles)
    .values(row)
    .onConflictDoUpdate({
      target: [userRoles.userId, userRoles.roleId],
      set: { expiresAt: row.expiresAt ?? null, grantedBy: row.grantedBy ?? null },
    })
    .returning();
  if (!saved) throw new Error("upsert returned no row");
  await notifyClaimsChange(db, row.userId);
  return saved;
}

export async function deleteUserRole(db: Executor, userId: string, roleId: string): Promise<UserRoleRow | null> {
  const [row] = await db
    .delete(userRoles)
    .where(and(eq(userRoles.userId, userId), eq(userRoles.roleId, roleId)))
    .returning();
  if (row) await notifyClaimsChange(db, userId);
  return row ?? null;
}

export interface UserRoleListing {
  roleId: string;
  roleName: string;
  roleDescription: string;
  clientRowId: string | null;
  clientId: string | null;
  clientName: string | null;
  expiresAt: Date | null;
  createdAt: Date;
}

/** The user's assignments (expired ones too: the caller says which are in force), by role id. */
export async function selectUserRoles(
  db: Executor,
  userId: string,
  page: { limit: number; after?: string | undefined; only?: string },
): Promise<UserRoleListing[]> {
  return db
    .select({
      roleId: userRoles.roleId,
      roleName: roles.name,
      roleDescription: roles.description,
      clientRowId: roles.clientId,
      clientId: clients.clientId,
      clientName: clients.name,
      expiresAt: userRoles.expiresAt,
      createdAt: userRoles.createdAt,
    })
    .from(userRoles)
    .innerJoin(roles, eq(roles.id, userRoles.roleId))
    .leftJoin(clients, eq(clients.id, roles.clientId))
    .where(
      and(
        eq(userRoles.userId, userId),
        page.after === undefined ? undefined : gt(userRoles.roleId, page.after),
        page.only === undefined ? undefined : eq(userRoles.roleId, page.only),
      ),
    )
    .orderBy(asc(userRoles.roleId))
    .limit(page.limit);
}

/** Entitlement catalog rows for these names, creating the missing ones; `created` names the new ones. */
export async function ensureEntitlementRows(
  db: Executor,
  names: string[],
  now: Date,
): Promise<{ rows: Array<{ id: string; name: string }>; created: string[] }> {
  if (names.length === 0) return { rows: [], created: [] };
  const inserted = await db
    .insert(entitlements)
    .values(names.map((name) => ({ name, createdAt: now, updatedAt: now })))
    .onConflictDoNothing()
    .returning({ name: entitlements.name });
  const rows = await db
    .select({ id: entitlements.id, name: entitlements.name })
    .from(entitlements)
    .where(inArray(entitlements.name, names));
  return { rows, created: inserted.map((r) => r.name) };
}

export async function findEntitlementByName(db: Executor, name: string): Promise<{ id: string; name: string } | null> {
  const [row] = await db
    .select({ id: entitlements.id, name: entitlements.name })
    .from(entitlements)
    .where(eq(entitlements.name, name));
  return row ?? null;
}

const adminGrant = (userId: string, entitlementId: string) =>
  and(
    eq(userEntitlements.userId, userId),
    eq(userEntitlements.entitlementId, entitlementId),
    eq(userEntitlements.source, "admin"),
    eq(userEntitlements.sourceRef, ""),
  );

export async function findAdminGrant(db: Executor, userId: string, entitlementId: string) {
  const [row] = await db.select().from(userEntitlements).where(adminGrant(userId, entitlementId));
  return row ?? null;
}

/** The one admin grant of an entitlement to a user: created, or updated with the new limits and expiry. */
export async function upsertAdminGrant(
  db: Executor,
  row: {
    userId: string;
    entitlementId: string;
    clientIds: string[] | null;
    expiresAt: Date | null;
    grantedBy: string | null;
    now: Date;
  },
): Promise<UserEntitlementRow> {
  const [saved] = await db
    .insert(userEntitlements)
    .values({
      userId: row.userId,
      entitlementId: row.entitlementId,
      clientIds: row.clientIds,
      expiresAt: row.expiresAt,
      source: "admin",
      sourceRef: "",
      grantedBy: row.grantedBy,
      createdAt: row.now,
      updatedAt: row.now,
    })
    .onConflictDoUpdate({
      target: [
        userEntitlements.userId,
        userEntitlements.entitlementId,
        userEntitlements.source,
        userEntitlements.sourceRef,
      ],
      set: { clientIds: row.clientIds, expiresAt: row.expiresAt, grantedBy: row.grantedBy, updatedAt: row.now },
    })
    .returning();
  if (!saved) throw new Error("upsert returned no row");
  await notifyClaimsChange(db, row.userId);
  return saved;
}

export async function deleteAdminGrant(db: Executor, userId: string, entitlementId: string) {
  const [row] = await db.delete(userEntitlements).where(adminGrant(userId, entitlementId)).returning();
  if (row) await notifyClaimsChange(db, userId);
  return row ?? null;
}

export interface GrantListing {
  id: string;
  name: string;
  clientIds: string[] | null;
  expiresAt: Date | null;
  source: "admin" | "purchase";
  sourceRef: string;
  createdAt: Date;
}

/** Every grant of the user (every source, expired ones too), by entitlement name then grant id. */
export async function selectUserGrants(
  db: Executor,
  userId: string,
  page: { limit: number; after?: string | undefined },
): Promise<GrantListing[]> {
  return db
    .select({
      id: userEntitlements.id,
      name: entitlements.name,
      clientIds: userEntitlements.clientIds,
      expiresAt: userEntitlements.expiresAt,
      source: userEntitlements.source,
      sourceRef: userEntitlements.sourceRef,
      createdAt: userEntitlements.createdAt,
    })
    .from(userEntitlements)
    .innerJoin(entitlements, eq(entitlements.id, userEntitlements.entitlementId))
    .where(
      and(
        eq(userEntitlements.userId, userId),
        page.after === undefined ? undefined : gt(userEntitlements.id, page.after),
      ),
    )
    .orderBy(asc(userEntitlements.id))
    .limit(page.limit);
}

/** Public client ids and names for internal ids (views name apps by client_id, never by row id). */
export async function selectClientNames(
  db: Executor,
  ids: string[],
): Promise<Map<string, { clientId: string; name: string }>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .select({ id: clients.id, clientId: clients.clientId, name: clients.name })
    .from(clients)
    .where(inArray(clients.id, [...new Set(ids)]));
  return new Map(rows.map((r) => [r.id, { clientId: r.clientId, name: r.name }]));
}

/** Internal ids for public client_ids; unknown ones are absent from the map. */
export async function selectClientRowIds(db: Executor, clientIds: string[]): Promise<Map<string, string>> {
  if (clientIds.length === 0) return new Map();
  const rows = await db
    .select({ id: clients.id, clientId: clients.clientId })
    .from(clients)
    .where(inArray(clients.clientId, [...new Set(clientIds)]));
  return new Map(rows.map((r) => [r.clientId, r.id]));
}
