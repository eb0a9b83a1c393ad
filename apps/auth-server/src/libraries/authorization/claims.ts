import type { CoreContext } from "../../context.ts";
import { selectUserAuthorization, type UserAuthorizationRow } from "../../queries/authorization/catalog.ts";
import { cachedClaims } from "../../queries/owners-cache.ts";
import { type Catalog, catalogAt, reloadCatalog } from "./catalog.ts";

/** The scope that releases the claims below (advertised in discovery, asked for by default by the SDK). */
export const ROLES_SCOPE = "roles";

/** What one app learns about what the user may do there and owns. */
export interface AuthorizationClaims {
  /** This app's role names plus global ones. */
  roles: string[];
  /** The union of this app's permissions from those roles (never another app's). */
  permissions: string[];
  /** Entitlement names whose grants are not limited away from this app. */
  entitlements: string[];
}

const NONE: AuthorizationClaims = Object.freeze({
  roles: [],
  permissions: [],
  entitlements: [],
}) as AuthorizationClaims;

/**
 * The `roles`, `permissions` and `entitlements` claims of a user for one app (`clientRowId`: the internal
 * `clients.id`). From the instance's cache when it holds them (queries/owners-cache.ts: dropped on every instance when
 * the user's assignments or grants or the catalog change, and not used past the earliest expiry they depend on);
 * otherwise one indexed statement (the user's assignments, grants and the catalog version), names from the in-memory
 * catalog. Assignments and grants past their expiry do not count (judged against the context's clock).
 */
export async function authorizationClaims(
  ctx: CoreContext,
  userId: string,
  clientRowId: string,
): Promise<AuthorizationClaims> {
  const now = ctx.clock.now();
  return cachedClaims(ctx.db, userId, clientRowId, now, async () => {
    const row = await selectUserAuthorization(ctx.db, userId, now);
    if (!row) return { claims: NONE, validUntil: null };
    return { claims: await claimsOf(ctx, row, clientRowId), validUntil: row.nextExpiry };
  });
}

async function claimsOf(
  ctx: CoreContext,
  row: UserAuthorizationRow,
  clientRowId: string,
): Promise<AuthorizationClaims> {
  const catalog = await catalogAt(ctx.db, row.version);
  // An id the catalog does not know: a row written without bumping the version. Load once more; what is still
  // unknown then (a load that began before that write) is left out of this token rather than failing it.
  return (
    claimsFrom(catalog, row, clientRowId, true) ??
    (claimsFrom(await reloadCatalog(ctx.db), row, clientRowId, false) as AuthorizationClaims)
  );
}

/** Claims for an app; with `strict`, null if the catalog lacks an id the row names (else such ids are skipped). */
function claimsFrom(
  catalog: Catalog,
  row: UserAuthorizationRow,
  clientRowId: string,
  strict: boolean,
): AuthorizationClaims | null {
  const roles = new Set<string>();
  const permissions = new Set<string>();
  const entitlements = new Set<string>();
  for (const roleId of row.roleIds) {
    const role = catalog.roles.get(roleId);
    if (!role) {
      if (strict) return null;
      continue;
    }
    if (role.clientId !== null && role.clientId !== clientRowId) continue;
    roles.add(role.name);
    for (const permissionId of role.permissionIds) {
      const permission = catalog.permissions.get(permissionId);
      // Only this app's permissions, whatever the role holds (the library keeps a role's permissions in its own app).
      if (permission?.clientId === clientRowId) permissions.add(permission.name);
    }
  }
  for (const [entitlementId, clientIds] of row.grants) {
    const name = catalog.entitlements.get(entitlementId);
    if (name === undefined) {
      if (strict) return null;
      continue;
    }
    if (clientIds === null || clientIds.includes(clientRowId)) entitlements.add(name);
  }
  return { roles: [...roles].sort(), permissions: [...permissions].sort(), entitlements: [...entitlements].sort() };
}
