import type { Executor } from "@tessera/db";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { bumpCatalogVersion } from "../../queries/authorization/catalog.ts";
import { isUniqueViolation } from "../../queries/authorization/errors.ts";
import { getClient } from "../clients/index.ts";

/** The app a role belongs to: a public client_id, or null for the global roles. */
export type RoleScope = string | null;

/** The internal id of the app (CLIENT_NOT_FOUND for an unknown client_id), or null for global. */
export async function appRowId(db: Executor, scope: RoleScope): Promise<string | null> {
  return scope === null ? null : (await getClient(db, scope)).id;
}

/**
 * Runs a change to the catalog in one transaction that also bumps the catalog version, so every instance loads the
 * catalog again at its next token request. A unique-index refusal (a concurrent create or rename of the same name,
 * which the caller's check could not see) becomes `code`, a 409, never a 500.
 */
export async function catalogChange<T>(
  ctx: CoreContext,
  code: "ROLE_NAME_TAKEN" | "PERMISSION_NAME_TAKEN",
  fn: (tx: Executor, now: Date) => Promise<T>,
): Promise<T> {
  const now = ctx.clock.now();
  try {
    return await ctx.db.transaction(async (tx) => {
      const result = await fn(tx, now);
      await bumpCatalogVersion(tx, now);
      return result;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new AppError(code);
    throw error;
  }
}
