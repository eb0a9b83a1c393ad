import type { CoreContext } from "../../context.ts";
import { selectUserGrants, selectUserRoles } from "../../queries/authorization/grants.ts";
import { type UserRoleView, userRoleView } from "./assignments.ts";
import { type EntitlementGrantView, grantViews } from "./entitlements.ts";

/** Everything a user has, for the account page and `tessera users show`. */
export interface AssignmentOverview {
  roles: UserRoleView[];
  entitlements: EntitlementGrantView[];
}

/** More than any real account has; a bound on what one page shows. */
const OVERVIEW_LIMIT = 500;

/** The user's roles (by app) and entitlement grants, expired ones included and marked inactive. */
export async function userAuthorizationOverview(ctx: CoreContext, userId: string): Promise<AssignmentOverview> {
  const now = ctx.clock.now();
  const [roles, grants] = await Promise.all([
    selectUserRoles(ctx.db, userId, { limit: OVERVIEW_LIMIT }),
    selectUserGrants(ctx.db, userId, { limit: OVERVIEW_LIMIT }),
  ]);
  return sortOverview({
    roles: roles.map((r) => userRoleView(r, now)),
    entitlements: await grantViews(ctx.db, grants, now),
  });
}

/** The overview's order: roles by app name then role, entitlements by name (the CLI's remote mode sorts the same). */
export function sortOverview(overview: AssignmentOverview): AssignmentOverview {
  return {
    roles: [...overview.roles].sort(
      (a, b) => (a.client_name ?? "").localeCompare(b.client_name ?? "") || a.role.localeCompare(b.role),
    ),
    entitlements: [...overview.entitlements].sort((a, b) => a.name.localeCompare(b.name)),
  };
}
