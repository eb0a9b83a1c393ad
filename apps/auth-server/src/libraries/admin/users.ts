import type { AppContext, CoreContext, Logger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { type ConsoleUserRow, searchUsers } from "../../queries/admin-console.ts";
import { listIdentitiesOfUser } from "../../queries/federation.ts";
import { listPasskeys } from "../../queries/passkeys.ts";
import { deleteRecoveryCodes, deleteTotpFactor } from "../../queries/totp.ts";
import { findManageableUser } from "../../queries/user-status.ts";
import type { UserRow } from "../../queries/users.ts";
import { requestPasswordReset } from "../accounts/passwords.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { type TotpStatus, totpStatus } from "../mfa/factor.ts";
import { eraseAccount } from "../privacy/erasure.ts";
import { endSessions, listSessions, type SessionRow } from "../sessions.ts";
import { type AdminLevel, adminLevelOf } from "./levels.ts";

/** What an admin does to a user account (#14): one function per action, shared by the console and the admin API. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const via = (actor: Actor) => (actor.via ? { via: actor.via } : {});

async function manageable(deps: Pick<CoreContext, "db">, userId: string): Promise<UserRow> {
  const user = UUID.test(userId) ? await findManageableUser(deps.db, userId) : null;
  if (!user) throw new AppError("USER_NOT_FOUND");
  return user;
}

export interface UserSearch {
  users: ConsoleUserRow[];
  /** The `after` of the next page, or null on the last. */
  next: string | null;
}

/** Search by an exact user id or part of an email, a page at a time (keyset on the email). */
export async function findUsers(
  deps: Pick<CoreContext, "db">,
  input: { q?: string | undefined; after?: string | undefined; limit?: number | undefined },
): Promise<UserSearch> {
  const limit = Math.min(Math.max(input.limit ?? 25, 1), 200);
  const q = input.q?.trim().slice(0, 254);
  const rows = await searchUsers(deps.db, {
    id: q && UUID.test(q) ? q : undefined,
    text: q && !UUID.test(q) ? q.toLowerCase() : undefined,
    after: input.after?.slice(0, 254),
    limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  return { users: page, next: rows.length > limit ? (page.at(-1)?.email ?? null) : null };
}

/** An upstream account linked to the user (federation), as an admin sees it. */
export interface LinkedIdentity {
  id: string;
  providerSlug: string;
  providerName: string;
  /** The upstream's email at the last sign-in, if it gave one. */
  email: string | null;
  linkedAt: Date;
  lastSignInAt: Date | null;
}

/** A passkey of the user, as an admin sees it: never its credential id or public key. */
export interface PasskeySummary {
  id: string;
  name: string;
  backedUp: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface UserProfile {
  user: UserRow;
  level: AdminLevel | null;
  sessions: SessionRow[];
  twoStep: TotpStatus;
  /** How else the account signs in (read-only here; the owner links and removes them on the account pages). */
  identities: LinkedIdentity[];
  passkeys: PasskeySummary[];
}

export async function userProfile(deps: CoreContext, userId: string): Promise<UserProfile> {
  const user = await manageable(deps, userId);
  const [sessions, twoStep, identities, keys] = await Promise.all([
    listSessions(deps, user.id),
    totpStatus(deps, user.id),
    listIdentitiesOfUser(deps.db, user.id),
    listPasskeys(deps.db, user.id),
  ]);
  return {
    user,
    level: adminLevelOf({ ...user, disabledAt: null, deletedAt: null }),
    sessions,
    twoStep,
    // Picked field by field, so a column added to either table never reaches an admin page unseen.
    identities: identities.map((i) => ({
      id: i.id,
      providerSlug: i.providerSlug,
      providerName: i.providerName,
      email: i.email,
      linkedAt: i.linkedAt,
      lastSignInAt: i.lastSignInAt,
    })),
    passkeys: keys.map((k) => ({
      id: k.id,
      name: k.name,
      backedUp: k.backedUp,
      createdAt: k.createdAt,
      lastUsedAt: k.lastUsedAt,
    })),
  };
}

/** Ends one session of the user, or all of them (`sessionId` null); every app of them signs out. Support may do it. */
export async function endUserSessionsAsAdmin(
  deps: CoreContext,
  input: { userId: string; sessionId: string | null },
  actor: Actor,
): Promise<number> {
  const user = await manageable(deps, input.userId);
  if (input.sessionId !== null && !UUID.test(input.sessionId)) throw new AppError("SESSION_NOT_FOUND");
  return deps.db.transaction(async (tx) => {
    const where = input.sessionId === null ? { userId: user.id } : { userId: user.id, ids: [input.sessionId] };
    const ended = await endSessions(deps, tx, where, "ended_by_admin");
    if (input.sessionId !== null && ended.length === 0) throw new AppError("SESSION_NOT_FOUND");
    for (const id of ended) {
      await audit(tx, actor.meta, {
        event: "admin.session_ended",
        outcome: "success",
        actorId: actor.actorId,
        userId: user.id,
        sessionId: id,
        details: { ...via(actor), reason: "ended_by_admin" },
      });
    }
    return ended.length;
  });
}

/** Turns the user's two-step verification off (lost phone and recovery codes): they sign in with the password alone. */
export async function resetTwoStep(deps: CoreContext, userId: string, actor: Actor): Promise<boolean> {
  const user = await manageable(deps, userId);
  return deps.db.transaction(async (tx) => {
    const removed = await deleteTotpFactor(tx, user.id);
    await deleteRecoveryCodes(tx, user.id);
    await audit(tx, actor.meta, {
      event: "admin.mfa_reset",
      outcome: "success",
      actorId: actor.actorId,
      userId: user.id,
      details: { ...via(actor), removed },
    });
    return removed;
  });
}

/** Emails the user a password reset link (as "forgot password" would). */
export async function sendPasswordResetAsAdmin(
  ctx: AppContext,
  log: Logger,
  userId: string,
  actor: Actor,
): Promise<void> {
  const user = await manageable(ctx, userId);
  if (user.disabledAt) throw new AppError("ACCOUNT_DISABLED");
  await audit(ctx.db, actor.meta, {
    event: "admin.password_reset_sent",
    outcome: "success",
    actorId: actor.actorId,
    userId: user.id,
    details: via(actor),
  });
  await requestPasswordReset(ctx, log, { email: user.email, meta: actor.meta });
}

/**
 * Deletes an account as an admin: every session ends (every app signs out) and personal data is removed, as when the
 * user deletes it. An admin cannot delete their own account here.
 */
export async function deleteUserAsAdmin(ctx: AppContext, userId: string, actor: Actor): Promise<void> {
  const user = await manageable(ctx, userId);
  if (user.id === actor.actorId) throw new AppError("CONFLICT", "You cannot delete your own account here.");
  await eraseAccount(ctx, {
    userId: user.id,
    meta: actor.meta,
    event: "admin.user_deleted",
    actorId: actor.actorId ?? undefined,
    details: via(actor),
  });
}
