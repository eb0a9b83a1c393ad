/**
 * Roles, permissions and entitlements (#11): what each user may do in each app and what they own across apps.
 *
 * - `catalog.ts`: the in-memory catalog (id ↔ name in O(1)) and how it stays current across instances.
 * - `claims.ts`: the `roles`, `permissions`, `entitlements` claims issued with the `roles` scope.
 * - `roles.ts`, `permissions.ts`: the per-app (and global) catalog, managed by admins.
 * - `assignments.ts`, `entitlements.ts`: what each user has; `ensureEntitlements` for other areas (payments).
 */

export { assignRole, listUserRoles, type UserRoleView, unassignRole } from "./assignments.ts";
export { catalogAt } from "./catalog.ts";
export type { RoleScope } from "./change.ts";
export { type AuthorizationClaims, authorizationClaims, ROLES_SCOPE } from "./claims.ts";
export {
  type EntitlementGrantView,
  ensureEntitlements,
  grantEntitlement,
  listUserEntitlements,
  revokeEntitlement,
} from "./entitlements.ts";
export type { Page } from "./input.ts";
export { type AssignmentOverview, sortOverview, userAuthorizationOverview } from "./overview.ts";
export {
  createPermission,
  deletePermission,
  listPermissions,
  type PermissionView,
  updatePermission,
} from "./permissions.ts";
export { createRole, deleteRole, listAllRoles, listRoles, type RoleView, roleByName, updateRole } from "./roles.ts";
