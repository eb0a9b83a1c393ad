import type { AppContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  deleteConsent,
  findConsentScopes,
  revokeUserClientTokens,
  selectUserConsents,
  upsertConsent,
} from "../../queries/consents.ts";
import { audit, type RequestMeta } from "../audit.ts";
import type { ClientRow } from "../clients/index.ts";
import { enqueueWebhook } from "../webhooks/index.ts";

/**
 * Remembered consent: per user and client, the set of scopes the user approved. A request whose scopes are all in
 * that set needs no question (so `prompt=none` and `id_token_hint` work for third-party apps after the first
 * approval); a wider one asks again; `prompt=consent` always asks.
 */
export async function hasConsent(ctx: AppContext, userId: string, client: ClientRow, scopes: string[]) {
  const granted = await findConsentScopes(ctx.db, userId, client.id);
  return granted !== null && scopes.every((s) => granted.includes(s));
}

export async function rememberConsent(ctx: AppContext, userId: string, client: ClientRow, scopes: string[]) {
  await upsertConsent(ctx.db, { userId, clientId: client.id, scopes: [...scopes].sort(), now: ctx.clock.now() });
}

export async function userConsents(ctx: AppContext, userId: string) {
  return selectUserConsents(ctx.db, userId);
}

/**
 * The user withdraws an application's access: the consent is forgotten (the next sign-in asks again) and every
 * refresh token of that application for this user ends, in all sessions, with the access tokens issued from them
 * (access tokens need a live chain). One transaction, audited as consent.revoked.
 */
export async function revokeConsent(
  ctx: AppContext,
  input: { userId: string; clientId: string; meta: RequestMeta },
): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const clientRowId = await deleteConsent(tx, input.userId, input.clientId);
    if (!clientRowId) throw new AppError("CONSENT_NOT_FOUND");
    const revoked = await revokeUserClientTokens(tx, input.userId, clientRowId, ctx.clock.now());
    await audit(tx, input.meta, {
      event: "consent.revoked",
      outcome: "success",
      userId: input.userId,
      clientId: input.clientId,
      details: { refreshTokensRevoked: revoked },
    });
    // Only the app that lost its access hears of it: other apps must not learn which apps the user uses.
    await enqueueWebhook(ctx, tx, {
      type: "consent.revoked",
      userId: input.userId,
      clientId: clientRowId,
      data: { client_id: input.clientId },
    });
  });
}
