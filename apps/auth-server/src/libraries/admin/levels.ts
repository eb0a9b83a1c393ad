import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { updateAdminUser } from "../../queries/admin.ts";
import { findManageableUser } from "../../queries/user-status.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";

/**
 * Admin levels (#14). `admin` may do everything; `support` reads everything and may also end sessions and lift
 * suspensions or account locks, nothing else. Stored as `users.admin_role` beside `users.is_admin`: `is_admin` still
 * says "is an admin at all", and an admin whose `admin_role` is null (every admin created before levels existed) is a
 * full admin, so no data migration is needed.
 */
export type AdminLevel = "admin" | "support";

export const ADMIN_LEVELS: readonly AdminLevel[] = ["admin", "support"];

interface AdminFields {
  isAdmin: boolean;
  adminRole: AdminLevel | null;
  disabledAt: Date | null;
  deletedAt: Date | null;
}

/** The level of a live admin account, or null for anyone else (not an admin, disabled, deleted). */
export function adminLevelOf(user: AdminFields): AdminLevel | null {
  if (!user.isAdmin || user.disabledAt || user.deletedAt) return null;
  return user.adminRole ?? "admin";
}

/** Whether an admin of level `have` may do what needs `need`. */
export function levelAllows(have: AdminLevel | null, need: AdminLevel): boolean {
  if (have === null) return false;
  return have === "admin" || need === "support";
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Makes a user an admin of `level`, or no admin (`null`). Audited with before and after. An admin cannot change their
 * own level (so the last full admin cannot lock everyone out by demoting themselves by mistake).
 */
export async function setAdminLevel(
  deps: CoreContext,
  userId: string,
  level: AdminLevel | null,
  actor: Actor,
): Promise<{ id: string; email: string; level: AdminLevel | null }> {
  if (level !== null && !ADMIN_LEVELS.includes(level)) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "level", message: "must be admin, support or none" }]);
  }
  const existing = UUID.test(userId) ? await findManageableUser(deps.db, userId) : null;
  if (!existing) throw new AppError("USER_NOT_FOUND");
  if (existing.id === actor.actorId) throw new AppError("CONFLICT", "You cannot change your own admin level.");
  return deps.db.transaction(async (tx) => {
    const before = adminLevelOf({ ...existing, disabledAt: null, deletedAt: null });
    const updated = await updateAdminUser(tx, existing.id, {
      isAdmin: level !== null,
      adminRole: level,
      updatedAt: deps.clock.now(),
    });
    if (!updated) throw new AppError("USER_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.admin_level_changed",
      outcome: "success",
      actorId: actor.actorId,
      userId: updated.id,
      details: { before, after: level, ...(actor.via ? { via: actor.via } : {}) },
    });
    return { id: updated.id, email: updated.email, level };
  });
}
