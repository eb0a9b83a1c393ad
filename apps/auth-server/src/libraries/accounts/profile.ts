import type { Executor } from "@tessera/db";
import type { AppContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { type UserRow, updateUser } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { eraseAccount } from "../privacy/erasure.ts";
import { endSessions, listSessions, type SessionRow } from "../sessions.ts";
import { enqueueWebhook } from "../webhooks/index.ts";
import { checkCurrentPassword } from "./passwords.ts";

// Profile, sessions, deletion

export async function updateProfile(
  ctx: AppContext,
  input: {
    user: UserRow;
    displayName: string | null;
    /** The saved language; null follows the browser; undefined leaves it as it is. */
    locale?: string | null | undefined;
    meta: RequestMeta;
  },
): Promise<UserRow> {
  const updated = await ctx.db.transaction(async (tx) => {
    const row = await updateUser(tx, input.user.id, {
      displayName: input.displayName,
      ...(input.locale !== undefined ? { locale: input.locale } : {}),
      updatedAt: ctx.clock.now(),
    });
    if (row) await enqueueWebhook(ctx, tx, { type: "user.updated", userId: row.id });
    return row;
  });
  if (!updated) throw new AppError("UNAUTHENTICATED");
  return updated;
}

export async function userSessions(ctx: AppContext, userId: string): Promise<SessionRow[]> {
  return listSessions(ctx, userId);
}

/** Ends one of the user's own sessions. Another user's session id answers SESSION_NOT_FOUND, like an unknown one. */
export async function endUserSession(
  ctx: AppContext,
  input: { userId: string; sessionId: string; meta: RequestMeta; currentSessionId?: string },
): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const ended = await endSessions(ctx, tx, { ids: [input.sessionId], userId: input.userId }, "ended_by_user");
    if (ended.length === 0) throw new AppError("SESSION_NOT_FOUND");
    await audit(tx, input.meta, {
      event: "session.ended",
      outcome: "success",
      userId: input.userId,
      sessionId: input.sessionId,
      details: { reason: "ended_by_user", current: input.sessionId === input.currentSessionId },
    });
  });
}

/** "Sign out everywhere else": ends every session of the user except the current one. Returns how many ended. */
export async function endOtherSessions(
  ctx: AppContext,
  input: { userId: string; currentSessionId: string; meta: RequestMeta },
): Promise<number> {
  return ctx.db.transaction(async (tx) => {
    const ended = await endSessions(
      ctx,
      tx,
      { userId: input.userId, exceptId: input.currentSessionId },
      "ended_by_user",
    );
    for (const id of ended) {
      await audit(tx, input.meta, {
        event: "session.ended",
        outcome: "success",
        userId: input.userId,
        sessionId: id,
        details: { reason: "ended_by_user" },
      });
    }
    return ended.length;
  });
}

export async function endAllSessions(
  ctx: AppContext,
  tx: Executor,
  meta: RequestMeta,
  userId: string,
  reason: string,
): Promise<void> {
  const ended = await endSessions(ctx, tx, { userId }, reason);
  for (const id of ended) {
    await audit(tx, meta, { event: "session.ended", outcome: "success", userId, sessionId: id, details: { reason } });
  }
}

/**
 * Deletes the account (needs the current password): every session ends (every app signs out), personal data is
 * removed (email replaced by a placeholder, name and password hash dropped, open links deleted, session IPs and user
 * agents cleared). Audit rows keep the events under the user id, without the email.
 */
export async function deleteAccount(
  ctx: AppContext,
  input: { user: UserRow; currentPassword: string; meta: RequestMeta },
): Promise<void> {
  await checkCurrentPassword(ctx, { user: input.user, plain: input.currentPassword, meta: input.meta });
  await eraseAccount(ctx, { userId: input.user.id, meta: input.meta, event: "user.deleted" });
}
