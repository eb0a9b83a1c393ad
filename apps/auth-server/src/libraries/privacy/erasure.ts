import { type AppContext, quietLogger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { anonymizeUser } from "../../queries/users.ts";
import { endAllSessions } from "../accounts/profile.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { detachAtProviders, forgetCustomers } from "../billing/account.ts";
import { enqueueWebhook } from "../webhooks/index.ts";

/** The user's deletion row carries no IP or user agent: it must not keep what the deletion removes. */
const NO_PERSONAL_DATA: RequestMeta = { ip: undefined, userAgent: undefined };

export interface Erasure {
  userId: string;
  meta: RequestMeta;
  /** `user.deleted` (the user) or `admin.user_deleted` (an admin, named as `actorId`). */
  event: "user.deleted" | "admin.user_deleted";
  actorId?: string | undefined;
  details?: Record<string, unknown> | undefined;
}

/**
 * The one path that deletes an account (#16; the account page, the API, the admin API and console): in one
 * transaction every session ends (each app's back-channel logout is queued), the user row is anonymised and its
 * factors, links and keys go (queries/users.ts `anonymizeUser`), payment customers are forgotten, and the deletion is
 * audited without personal data; then the payment providers' customers are detached. Audit events about the user
 * lose their email, IP and user agent at AUDIT_PII_RETENTION_DAYS (the sweeper). Anything that must also happen on a
 * deletion hooks in here. USER_NOT_FOUND when the account is already gone.
 */
export async function eraseAccount(ctx: AppContext, input: Erasure): Promise<void> {
  const customers = await ctx.db.transaction(async (tx) => {
    await endAllSessions(ctx, tx, input.meta, input.userId, "account_deleted");
    if (!(await anonymizeUser(tx, input.userId, ctx.clock.now()))) throw new AppError("USER_NOT_FOUND");
    // An admin's deletion keeps the admin's own IP and user agent (accountability); the user's own keeps none.
    await audit(tx, input.actorId ? input.meta : NO_PERSONAL_DATA, {
      event: input.event,
      outcome: "success",
      userId: input.userId,
      actorId: input.actorId,
      details: input.details,
    });
    // Webhooks (#16): every subscribed app the user used hears of the deletion, once, after its session.ended.
    await enqueueWebhook(ctx, tx, { type: "user.deleted", userId: input.userId });
    return forgetCustomers(tx, input.userId);
  });
  // Payments (#12): the payment provider's customer no longer names the deleted person.
  await detachAtProviders(ctx, quietLogger, { userId: input.userId, customers, meta: input.meta });
}
