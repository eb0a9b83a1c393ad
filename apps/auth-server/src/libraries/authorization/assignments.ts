import type { Executor } from "@tessera/db";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { isForeignKeyViolation } from "../../queries/authorization/errors.ts";
import {
  deleteUserRole,
  findLiveUser,
  findUserRole,
  lockUserForAuthorization,
  selectUserRoles,
  type UserRoleListing,
  type UserRoleRow,
  upsertUserRole,
} from "../../queries/authorization/grants.ts";
import { findRole } from "../../queries/authorization/roles.ts";
import { parse } from "../../validation.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { enqueueWebhook } from "../webhooks/index.ts";
import { assignSchema, changeDetails, type Page, UUID } from "./input.ts";

/** One role of a user, as the admin API, the CLI and the account page show it. */
export interface UserRoleView {
  role_id: string;
  role: string;
  /** The app's public client_id; null for a global role. */
  client_id: string | null;
  client_name: string | null;
  expires_at: string | null;
  /** False once `expires_at` has passed (the row stays until unassigned; it no longer counts). */
  active: boolean;
}

export function userRoleView(row: UserRoleListing, now: Date): UserRoleView {
  return {
    role_id: row.roleId,
    role: row.roleName,
    client_id: row.clientId,
    client_name: row.clientName,
    expires_at: row.expiresAt?.toISOString() ?? null,
    active: row.expiresAt === null || row.expiresAt > now,
  };
}

const assignmentState = (row: UserRoleRow | null) =>
  row ? { role_id: row.roleId, expires_at: row.expiresAt?.toISOString() ?? null } : null;

/**
 * Runs a change to one user's authorization with the user's row locked (so changes of one user are serialized and
 * the audit's "before" is exact). USER_NOT_FOUND for a malformed id, an unknown or a deleted user.
 */
export async function userChange<T>(
  ctx: CoreContext,
  userId: string,
  fn: (tx: Executor, now: Date) => Promise<T>,
): Promise<T> {
  if (typeof userId !== "string" || !UUID.test(userId)) throw new AppError("USER_NOT_FOUND");
  const now = ctx.clock.now();
  return ctx.db.transaction(async (tx) => {
    if (!(await lockUserForAuthorization(tx, userId))) throw new AppError("USER_NOT_FOUND");
    return fn(tx, now);
  });
}

/** An expiry from validated input, which must lie in the future (an already expired grant is a mistake). */
export function futureExpiry(value: string | null | undefined, now: Date): Date | null {
  if (value === undefined || value === null) return null;
  const date = new Date(value);
  if (!(date > now)) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "expiresAt", message: "must be in the future" }]);
  }
  return date;
}

/** Gives a user a role (any app's, or a global one); assigning it again replaces the expiry. */
export async function assignRole(
  ctx: CoreContext,
  userId: string,
  input: unknown,
  actor: Actor,
): Promise<UserRoleView> {
  const valid = parse(assignSchema, input);
  if (!UUID.test(valid.roleId)) throw new AppError("ROLE_NOT_FOUND");
  try {
    return await userChange(ctx, userId, async (tx, now) => {
      const expiresAt = futureExpiry(valid.expiresAt, now);
      const role = await findRole(tx, valid.roleId);
      if (!role) throw new AppError("ROLE_NOT_FOUND");
      const before = await findUserRole(tx, userId, role.id);
      // A concurrent role deletion makes this insert fail on the foreign key: ROLE_NOT_FOUND below, nothing written.
      const saved = await upsertUserRole(tx, {
        userId,
        roleId: role.id,
        expiresAt,
        grantedBy: actor.actorId,
        createdAt: now,
      });
      const [listing] = await selectUserRoles(tx, userId, { limit: 1, after: undefined, only: role.id });
      await audit(tx, actor.meta, {
        event: "admin.role_assigned",
        outcome: "success",
        actorId: actor.actorId,
        userId,
        clientId: listing?.clientId ?? null,
        details: changeDetails(actor, assignmentState(before), assignmentState(saved), { role: role.name }),
      });
      await enqueueWebhook(ctx, tx, { type: "roles.changed", userId });
      if (!listing) throw new AppError("ROLE_NOT_FOUND");
      return userRoleView(listing, now);
    });
  } catch (error) {
    if (isForeignKeyViolation(error)) throw new AppError("ROLE_NOT_FOUND");
    throw error;
  }
}

/** Takes a role from a user; ROLE_NOT_ASSIGNED when the user does not have it. */
export async function unassignRole(
  ctx: CoreContext,
  userId: string,
  roleId: string,
  actor: Actor,
): Promise<{ role_id: string; removed: true }> {
  if (typeof roleId !== "string" || !UUID.test(roleId)) throw new AppError("ROLE_NOT_FOUND");
  return userChange(ctx, userId, async (tx) => {
    const role = await findRole(tx, roleId);
    if (!role) throw new AppError("ROLE_NOT_FOUND");
    const removed = await deleteUserRole(tx, userId, roleId);
    if (!removed) throw new AppError("ROLE_NOT_ASSIGNED");
    await audit(tx, actor.meta, {
      event: "admin.role_unassigned",
      outcome: "success",
      actorId: actor.actorId,
      userId,
      details: changeDetails(actor, assignmentState(removed), null, { role: role.name }),
    });
    await enqueueWebhook(ctx, tx, { type: "roles.changed", userId });
    return { role_id: roleId, removed: true };
  });
}

/** A page of the user's roles (expired ones included, marked inactive). */
export async function listUserRoles(ctx: CoreContext, userId: string, page: Page): Promise<UserRoleView[]> {
  if (typeof userId !== "string" || !UUID.test(userId)) throw new AppError("USER_NOT_FOUND");
  if (!(await findLiveUser(ctx.db, userId))) throw new AppError("USER_NOT_FOUND");
  const now = ctx.clock.now();
  return (await selectUserRoles(ctx.db, userId, page)).map((r) => userRoleView(r, now));
}
