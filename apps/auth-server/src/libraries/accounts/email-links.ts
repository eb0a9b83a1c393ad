import type { AppContext, Logger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { changeUserEmail, findUserById, isEmailTaken, type UserRow, updateUser } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { issueEmailToken, peekEmailToken, retireEmailTokens, useEmailToken } from "../email-tokens.ts";
import { sendInBackground } from "../mailer/index.ts";
import { accountEmail } from "../mailer/messages.ts";
import { normalizeEmail } from "../throttle/keys.ts";
import { enqueueWebhook } from "../webhooks/index.ts";
import { checkCurrentPassword } from "./passwords.ts";
import type { Continuation } from "./return-to.ts";

// Email verification and email change (one link page serves both purposes)

export type EmailLinkPurpose = "verify_email" | "change_email";

/** What a link is for, without using it (the confirmation page shows this before the POST does the work). */
export async function inspectEmailLink(
  ctx: AppContext,
  token: string,
): Promise<{ purpose: EmailLinkPurpose; newEmail: string | null }> {
  const row = await peekEmailToken(ctx.db, token, ["verify_email", "change_email"], ctx.clock.now());
  return { purpose: row.purpose as EmailLinkPurpose, newEmail: row.newEmail };
}

export type EmailLinkResult = { purpose: "verify_email"; user: UserRow } | { purpose: "change_email"; user: UserRow };

/**
 * Uses a verification or email-change link. Neither signs anyone in: an email link is not a password. Signing in from
 * a verification link would turn a day-long, forwardable link into a magic link that skips the sign-in throttling and
 * lock, would let someone who registered a victim's address with a password of their own hand the victim a signed-in
 * session on that account (the victim then uses an account whose password the registrant knows; without the automatic
 * sign-in the victim has to reset the password, which ends the registrant's sessions), and would sign a browser into
 * whatever account a link sent to it belongs to. Changing the email checks the new address is still free and tells the
 * old address.
 */
export async function confirmEmailLink(
  ctx: AppContext,
  log: Logger,
  input: { token: string; meta: RequestMeta },
): Promise<EmailLinkResult> {
  const { purpose } = await inspectEmailLink(ctx, input.token);
  const now = ctx.clock.now();
  if (purpose === "verify_email") {
    const user = await ctx.db.transaction(async (tx) => {
      const row = await useEmailToken(tx, input.token, "verify_email", now);
      const user = await findUserById(tx, row.userId);
      if (!user || user.disabledAt) throw new AppError("INVALID_TOKEN");
      const updated = user.emailVerifiedAt
        ? user
        : await updateUser(tx, user.id, { emailVerifiedAt: now, updatedAt: now });
      await audit(tx, input.meta, { event: "user.email_verified", outcome: "success", userId: user.id });
      return updated ?? user;
    });
    return { purpose, user };
  }

  const { user, oldEmail } = await ctx.db.transaction(async (tx) => {
    const row = await useEmailToken(tx, input.token, "change_email", now);
    const user = await findUserById(tx, row.userId);
    if (!user || !row.newEmail) throw new AppError("INVALID_TOKEN");
    const taken = () =>
      new AppError("CONFLICT", "This email address is already used by another account.", [
        { field: "newEmail", message: "This email address is already used by another account." },
      ]);
    if (await isEmailTaken(tx, row.newEmail, user.id)) throw taken();
    // Null when a concurrent change or registration took the address after the check (the unique index decides).
    const updated = await changeUserEmail(tx, user.id, row.newEmail, now);
    if (!updated) throw taken();
    await retireEmailTokens(tx, user.id, now);
    await audit(tx, input.meta, { event: "user.email_changed", outcome: "success", userId: user.id });
    await enqueueWebhook(ctx, tx, { type: "user.updated", userId: user.id });
    return { user: updated, oldEmail: user.email };
  });
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "email_changed",
      to: oldEmail,
      locale: user.locale,
      requestLocale: input.meta.locale,
    }),
    log,
  );
  return { purpose, user };
}

/** Sends a fresh verification link to a signed-in user whose address is not verified yet (older links stop working). */
export async function resendVerification(
  ctx: AppContext,
  log: Logger,
  user: UserRow,
  continuation?: Continuation,
  meta?: RequestMeta,
): Promise<void> {
  if (user.emailVerifiedAt) return;
  const token = await issueEmailToken(ctx.db, {
    userId: user.id,
    purpose: "verify_email",
    ttlSeconds: ctx.config.tokens.emailVerificationTtlSeconds,
    now: ctx.clock.now(),
  });
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "verify_email",
      to: user.email,
      token,
      continuation,
      locale: user.locale,
      requestLocale: meta?.locale,
    }),
    log,
  );
}

/** Starts an email change: needs the current password; the link goes to the new address. */
export async function requestEmailChange(
  ctx: AppContext,
  log: Logger,
  input: { user: UserRow; currentPassword: string; newEmail: string; meta: RequestMeta },
): Promise<void> {
  await checkCurrentPassword(ctx, { user: input.user, plain: input.currentPassword, meta: input.meta, log });
  if (input.newEmail === normalizeEmail(input.user.email)) {
    throw new AppError("VALIDATION_FAILED", "This is already your email address.", [
      { field: "newEmail", message: "This is already your email address." },
    ]);
  }
  // Whether the new address is taken is checked only when the link is used, by the address's owner: answering here
  // would let a signed-in user probe which addresses have accounts.
  const token = await issueEmailToken(ctx.db, {
    userId: input.user.id,
    purpose: "change_email",
    ttlSeconds: ctx.config.tokens.emailVerificationTtlSeconds,
    now: ctx.clock.now(),
    newEmail: input.newEmail,
  });
  // The new address belongs to the same person: the account's language.
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "change_email",
      to: input.newEmail,
      token,
      locale: input.user.locale,
      requestLocale: input.meta.locale,
    }),
    log,
  );
}
