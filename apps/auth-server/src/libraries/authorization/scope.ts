import type { CoreContext } from "../../context.ts";
import { type AuthorizationClaims, authorizationClaims, ROLES_SCOPE } from "./claims.ts";

/**
 * The authorization claims for a token with these scopes: the user's `roles`, `permissions` and `entitlements` in
 * that app when the `roles` scope was granted, nothing (and no query) otherwise. The one call the token, userinfo and
 * introspection paths make.
 */
export async function authorizationClaimsFor(
  ctx: CoreContext,
  userId: string,
  clientRowId: string,
  scopes: readonly string[],
): Promise<AuthorizationClaims | Record<string, never>> {
  return scopes.includes(ROLES_SCOPE) ? authorizationClaims(ctx, userId, clientRowId) : {};
}
