import { randomUUID } from "node:crypto";
import type { AppContext, Logger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { deleteGuestUser, insertGuestUser, upgradeGuestUser } from "../../queries/guests.ts";
import { findUserByEmail, type UserRow } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import type { ClientRow } from "../clients/index.ts";
import { issueEmailToken } from "../email-tokens.ts";
import { sendInBackground } from "../mailer/index.ts";
import { accountEmail } from "../mailer/messages.ts";
import { checkAccessToken } from "../oauth/resources.ts";
import { checkScope } from "../oauth/scopes.ts";
import { createRefreshToken, type Grant, type TokenResponse, tokenResponse } from "../oauth/tokens.ts";
import { hashPassword, passwordProblems } from "../passwords.ts";
import { endSessions, signIn } from "../sessions.ts";

/**
 * Guest accounts for games (play first, sign up later), per client opt-in (`guest_accounts`).
 *
 * - `createGuest`: an anonymous user (no password; a placeholder address under the reserved `.invalid` TLD, never
 *   shown: ID tokens and userinfo carry `is_anonymous: true` instead of email claims) and a session of its own, answered
 *   as the normal token response. The guest lives as long as its session and refresh tokens do.
 * - `upgradeGuest`: adds an email and a password in place: same user id, so the same `sub`, the same session and
 *   tokens. An email that already has an account is never merged: GUEST_EMAIL_IN_USE, and the app sends the user
 *   to sign in to that account instead, then ends the guest (`endGuest`).
 * - `endGuest`: ends the guest's sessions (back-channel logout to every app that took part) and deletes it.
 * - Idle guests (no session seen for GUEST_IDLE_DAYS) are deleted by the sweeper (libraries/jobs/sweeper.ts).
 */

const GUEST_EMAIL_DOMAIN = "guest.invalid";

export async function createGuest(
  ctx: AppContext,
  client: ClientRow,
  scope: string | undefined,
  meta: RequestMeta,
): Promise<TokenResponse> {
  if (!client.guestAccountsEnabled) throw new AppError("GUEST_ACCOUNTS_DISABLED");
  const scopes = checkScope(client, scope ?? "openid");
  const now = ctx.clock.now();
  const id = randomUUID();
  const { grant, refreshToken } = await ctx.db.transaction(async (tx) => {
    const user = await insertGuestUser(tx, { id, email: `${id}@${GUEST_EMAIL_DOMAIN}`, now });
    // No authentication method was used (RFC 8176 has none for "anonymous"): amr is empty.
    const { session } = await signIn(ctx, tx, { userId: user.id, amr: [], meta });
    const grant: Grant = { client, user, session, scopes };
    const { token } = await createRefreshToken(tx, { grant, now });
    await audit(tx, meta, {
      event: "guest.created",
      outcome: "success",
      userId: user.id,
      clientId: client.clientId,
      sessionId: session.id,
    });
    return { grant, refreshToken: token };
  });
  return tokenResponse(ctx, grant, refreshToken);
}

/** The guest a verified access token names, or NOT_A_GUEST. */
function requireGuest(user: UserRow): UserRow {
  if (!user.isAnonymous) throw new AppError("NOT_A_GUEST");
  return user;
}

export interface UpgradeInput {
  email: string;
  password: string;
  meta: RequestMeta;
  log: Logger;
}

/**
 * Upgrades the guest in place. The email is checked first (a friendly early answer) and again by the unique index
 * inside the transaction (a concurrent registration); the guest flag is cleared by a conditional UPDATE, so of two
 * racing upgrades exactly one wins and the other answers NOT_A_GUEST. A verification email goes to the new address.
 */
export async function upgradeGuest(ctx: AppContext, guest: UserRow, input: UpgradeInput): Promise<UserRow> {
  requireGuest(guest);
  const problems = passwordProblems(ctx.config.passwords, input.password, "password", [
    input.email,
    input.email.split("@")[0],
  ]);
  if (problems.length) throw new AppError("WEAK_PASSWORD", problems[0]?.message, problems);
  if (input.email.endsWith(`@${GUEST_EMAIL_DOMAIN}`)) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "email", message: "Enter your own email address." }]);
  }
  if (await findUserByEmail(ctx.db, input.email)) throw new AppError("GUEST_EMAIL_IN_USE");
  const passwordHash = await hashPassword(ctx.config.passwords, input.password);
  const now = ctx.clock.now();
  const { user, token } = await ctx.db.transaction(async (tx) => {
    const result = await upgradeGuestUser(tx, guest.id, { email: input.email, passwordHash, now });
    // Thrown inside the transaction: a refused UPDATE (unique violation) has aborted it, so it must roll back.
    if (result === "email_in_use") throw new AppError("GUEST_EMAIL_IN_USE");
    if (result === "not_a_guest") throw new AppError("NOT_A_GUEST");
    const token = await issueEmailToken(tx, {
      userId: result.user.id,
      purpose: "verify_email",
      ttlSeconds: ctx.config.tokens.emailVerificationTtlSeconds,
      now,
    });
    await audit(tx, input.meta, { event: "guest.upgraded", outcome: "success", userId: result.user.id });
    return { user: result.user, token };
  });
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "verify_email",
      to: user.email,
      token,
      locale: user.locale,
      requestLocale: input.meta.locale,
    }),
    input.log,
  );
  return user;
}

/** Ends a guest: its sessions end (back-channel logout to the apps in them) and the account is deleted. */
export async function endGuest(ctx: AppContext, guest: UserRow, meta: RequestMeta): Promise<void> {
  requireGuest(guest);
  await ctx.db.transaction(async (tx) => {
    await endSessions(ctx, tx, { userId: guest.id }, "guest_ended");
    if (!(await deleteGuestUser(tx, guest.id))) throw new AppError("NOT_A_GUEST");
    await audit(tx, meta, { event: "guest.ended", outcome: "success", userId: guest.id });
  });
}

/** The user a guest's Tessera access token (RFC 6750 bearer) names, while its session is live; TOKEN_INVALID else. */
export async function userFromAccessToken(ctx: AppContext, token: string | undefined): Promise<UserRow> {
  const verified = token && token.length <= 16 * 1024 ? await checkAccessToken(ctx, token) : null;
  if (!verified) throw new AppError("TOKEN_INVALID");
  return verified.user;
}
