import {
  authorizationCatalog,
  type Executor,
  entitlements,
  permissions,
  rolePermissions,
  roles,
  users,
} from "@tessera/db";
import { eq, sql } from "drizzle-orm";
import { notifyCatalogChange } from "../owners-cache.ts";
import { prepared } from "../prepared.ts";

/**
 * Bumps the catalog version (see the `authorization_catalog` table); call inside the transaction of the change. Every
 * instance's cached claims are dropped at commit (owners-cache.ts): names and role permissions may have changed.
 */
export async function bumpCatalogVersion(db: Executor, now: Date): Promise<void> {
  await db
    .insert(authorizationCatalog)
    .values({ id: 1, version: 1, updatedAt: now })
    .onConflictDoUpdate({
      target: authorizationCatalog.id,
      set: { version: sql`${authorizationCatalog.version} + 1`, updatedAt: now },
    });
  await notifyCatalogChange(db);
}

export interface CatalogRows {
  version: number;
  roles: Array<{ id: string; clientId: string | null; name: string }>;
  permissions: Array<{ id: string; clientId: string; name: string }>;
  rolePermissions: Array<{ roleId: string; permissionId: string }>;
  entitlements: Array<{ id: string; name: string }>;
}

/**
 * The whole catalog. The version is read first: a change committing meanwhile leaves a version older than the rows,
 * so the next token request sees a newer version and loads again (never the reverse, a stale catalog marked current).
 */
export async function selectCatalog(db: Executor): Promise<CatalogRows> {
  const [row] = await db
    .select({ version: authorizationCatalog.version })
    .from(authorizationCatalog)
    .where(eq(authorizationCatalog.id, 1));
  const [roleRows, permissionRows, links, entitlementRows] = await Promise.all([
    db.select({ id: roles.id, clientId: roles.clientId, name: roles.name }).from(roles),
    db.select({ id: permissions.id, clientId: permissions.clientId, name: permissions.name }).from(permissions),
    db.select().from(rolePermissions),
    db.select({ id: entitlements.id, name: entitlements.name }).from(entitlements),
  ]);
  return {
    version: row?.version ?? 0,
    roles: roleRows,
    permissions: permissionRows,
    rolePermissions: links,
    entitlements: entitlementRows,
  };
}

/** What the token path reads about a user: role ids and entitlement grants in force at `now`, and the catalog version. */
export interface UserAuthorizationRow {
  version: number;
  roleIds: string[];
  /** [entitlement id, client ids (internal) or null = every app] per grant in force. */
  grants: Array<[string, string[] | null]>;
  /** The earliest expiry among those assignments and grants (when the claims next change by themselves), or null. */
  nextExpiry: Date | null;
}

/**
 * ONE statement on the token path, by primary key and the two `user_id`-leading indexes: the user's unexpired role
 * assignments, unexpired entitlement grants (every source: admin and purchase) and the catalog version. Expiry is
 * judged here, against the caller's clock, so an expired row stops counting without any sweep.
 */
export async function selectUserAuthorization(
  db: Executor,
  userId: string,
  now: Date,
): Promise<UserAuthorizationRow | null> {
  const [row] = await prepared(db, "authorization_user_claims", (d) => {
    const nowParam = sql`${sql.placeholder("now")}::timestamptz`;
    return d
      .select({
        // Written out with qualified names: drizzle renders a column inside sql`` unqualified, and an unqualified
        // "id" in a subquery on user_entitlements would be that table's own id, not the user's.
        version: sql<number>`coalesce((select ac.version from authorization_catalog ac where ac.id = 1), 0)`.mapWith(
          Number,
        ),
        roleIds: sql<string[]>`(select coalesce(json_agg(ur.role_id), '[]'::json) from user_roles ur
          where ur.user_id = "users"."id" and (ur.expires_at is null or ur.expires_at > ${nowParam}))`,
        grants: sql<Array<[string, string[] | null]>>`(select coalesce(json_agg(json_build_array(
            ue.entitlement_id, ue.client_ids)), '[]'::json) from user_entitlements ue
          where ue.user_id = "users"."id" and (ue.expires_at is null or ue.expires_at > ${nowParam}))`,
        // Epoch milliseconds (a number whatever the driver's date parsing); least() skips a null side.
        nextExpiry: sql<number | string | null>`(extract(epoch from least(
          (select min(ur.expires_at) from user_roles ur where ur.user_id = "users"."id" and ur.expires_at > ${nowParam}),
          (select min(ue.expires_at) from user_entitlements ue
            where ue.user_id = "users"."id" and ue.expires_at > ${nowParam}))) * 1000)::float8`,
      })
      .from(users)
      .where(eq(users.id, sql.placeholder("userId")))
      .prepare("authorization_user_claims");
  }).execute({ userId, now: now.toISOString() });
  if (!row) return null;
  return {
    version: row.version,
    roleIds: jsonValue(row.roleIds),
    grants: jsonValue(row.grants),
    nextExpiry: row.nextExpiry === null ? null : new Date(Number(row.nextExpiry)),
  };
}

/** json columns: parsed by postgres.js and PGlite alike, but a string if a driver hands back the text. */
function jsonValue<T>(value: T | string): T {
  return typeof value === "string" ? (JSON.parse(value) as T) : value;
}
