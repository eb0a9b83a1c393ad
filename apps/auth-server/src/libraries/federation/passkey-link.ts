import type { AuthenticationResponseJSON } from "@simplewebauthn/server";
import type { AppContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { consumeFlow } from "../../queries/federation.ts";
import { passkeyExists } from "../../queries/passkeys.ts";
import type { Continuation } from "../accounts/return-to.ts";
import { checkCanSignIn, type SignedIn, startSession } from "../accounts/sign-in.ts";
import type { RequestMeta } from "../audit.ts";
import { beginPasskeyProof, verifyPasskeyProof } from "../passkeys/authentication.ts";
import { spendCeremony } from "../passkeys/ceremony.ts";
import { passkeyAmr } from "../passkeys/relying-party.ts";
import type { SessionRow } from "../sessions.ts";
import { link, pendingLink } from "./accounts.ts";

/**
 * The third proof of an existing account for a pending link, beside its password and an emailed link: a passkey of
 * that account. The options list the pending account's keys only; the ceremony (cookie + challenge, purpose
 * `federation_link`) is bound to that account, so neither a passkey sign-in's challenge nor a replayed one proves
 * anything here, and a key of another user is refused by the server whatever the browser offers.
 *
 * A key with user verification is two factors (possession plus PIN or biometric), so, exactly as passkey sign-in, it
 * signs in without the code step of an account with an authenticator app; `amr` is the key's (`hwk`/`swk`, `user`,
 * `mfa`) followed by `fed` and the provider's slug.
 */
export async function beginPasskeyLink(ctx: AppContext, pendingCookie: string | undefined) {
  const pending = await pendingLink(ctx, pendingCookie);
  if (!pending) throw new AppError("FEDERATION_STATE_INVALID");
  return beginPasskeyProof(ctx, { purpose: "federation_link", userId: pending.user.id });
}

/** Whether the pending link's page offers the passkey (the account has one). */
export const canProveWithPasskey = (ctx: AppContext, userId: string) => passkeyExists(ctx.db, userId);

/**
 * Ceremony spent (once, this purpose, this browser) → the pending link still live in this browser and for the account
 * the ceremony was made for → the assertion by one of that account's keys, UV required, counter grown → the account may
 * sign in → the pending link spent → linked (audited `user.identity_linked`, proof `passkey`) → session. A refusal at
 * any step links nothing; only a refused assertion leaves the pending link usable for another proof.
 */
export async function confirmPasskeyLink(
  ctx: AppContext,
  input: {
    token: string | undefined;
    pendingCookie: string | undefined;
    credential: AuthenticationResponseJSON;
    meta: RequestMeta;
    existing: SessionRow | null;
  },
): Promise<{ signedIn: SignedIn; continuation: Continuation }> {
  const ceremony = await spendCeremony(ctx, input.token, "federation_link");
  const pending = await pendingLink(ctx, input.pendingCookie);
  if (!pending || ceremony.userId !== pending.user.id) throw new AppError("FEDERATION_STATE_INVALID");
  const used = await verifyPasskeyProof(
    ctx,
    { credential: input.credential, meta: input.meta, purpose: "federation_link" },
    ceremony,
  );
  checkCanSignIn(ctx, pending.user);
  if (!(await consumeFlow(ctx.db, pending.flow.tokenHash, "pending_link", ctx.clock.now()))) {
    throw new AppError("FEDERATION_STATE_INVALID");
  }
  await link(ctx, pending.provider, pending.user.id, pending.profile, input.meta, "passkey");
  const signedIn = await startSession(ctx, {
    user: pending.user,
    amr: [...passkeyAmr({ ...used, afterPassword: false }), "fed", pending.provider.slug],
    meta: input.meta,
    existing: input.existing,
    ...(pending.continuation.clientId ? { clientId: pending.continuation.clientId } : {}),
  });
  return { signedIn, continuation: pending.continuation };
}
