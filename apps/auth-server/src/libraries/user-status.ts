import type { CoreContext } from "../context.ts";
import { AppError } from "../errors/index.ts";
import { findManageableUser, markUserDisabled, markUserEnabled } from "../queries/user-status.ts";
import type { UserRow } from "../queries/users.ts";
import { audit } from "./audit.ts";
import type { Actor } from "./clients/index.ts";
import { endSessions } from "./sessions.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function manageableUser(deps: CoreContext, userId: string): Promise<UserRow> {
  const user = UUID.test(userId) ? await findManageableUser(deps.db, userId) : null;
  if (!user) throw new AppError("USER_NOT_FOUND");
  return user;
}

/**
 * Disables an account (SECURITY.md: account disable takes effect for every app of every session). In one transaction:
 * the account is marked disabled (it can no longer sign in, refresh or use access tokens, which check it on every
 * use), every session of the user ends (refresh tokens revoked) and each client that took part gets a back-channel
 * logout queued, so client-signed access JWTs stop at once instead of at their expiry. Idempotent: disabling a
 * disabled account keeps the original time and ends nothing more. An admin cannot disable their own account.
 */
export async function disableUser(
  deps: CoreContext,
  userId: string,
  actor: Actor,
): Promise<{ user: UserRow; sessionsEnded: number }> {
  const existing = await manageableUser(deps, userId);
  if (actor.actorId === existing.id) throw new AppError("CONFLICT", "You cannot disable your own account.");
  return deps.db.transaction(async (tx) => {
    const disabled = await markUserDisabled(tx, existing.id, deps.clock.now());
    if (!disabled) {
      const current = await findManageableUser(tx, existing.id);
      if (!current) throw new AppError("USER_NOT_FOUND");
      return { user: current, sessionsEnded: 0 };
    }
    const ended = await endSessions(deps, tx, { userId: disabled.id }, "account_disabled");
    await audit(tx, actor.meta, {
      event: "admin.user_disabled",
      outcome: "success",
      actorId: actor.actorId,
      userId: disabled.id,
      details: { ...(actor.via ? { via: actor.via } : {}), sessionsEnded: ended.length },
    });
    return { user: disabled, sessionsEnded: ended.length };
  });
}

/** Enables a disabled account again. Its ended sessions stay ended: the user signs in anew. Idempotent. */
export async function enableUser(deps: CoreContext, userId: string, actor: Actor): Promise<UserRow> {
  const existing = await manageableUser(deps, userId);
  return deps.db.transaction(async (tx) => {
    const enabled = await markUserEnabled(tx, existing.id, deps.clock.now());
    if (!enabled) return (await findManageableUser(tx, existing.id)) ?? existing;
    await audit(tx, actor.meta, {
      event: "admin.user_enabled",
      outcome: "success",
      actorId: actor.actorId,
      userId: enabled.id,
      details: actor.via ? { via: actor.via } : {},
    });
    return enabled;
  });
}
