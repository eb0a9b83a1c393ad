import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialRequestOptionsJSON,
  verifyAuthenticationResponse,
} from "@simplewebauthn/server";
import type { AppContext, CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  findPasskeyByCredentialId,
  listPasskeys,
  type PasskeyChallengeRow,
  type PasskeyRow,
  recordPasskeyUse,
} from "../../queries/passkeys.ts";
import { consumeMfaChallenge, countMfaChallengeAttempt, findLiveMfaChallenge } from "../../queries/totp.ts";
import { findUserById } from "../../queries/users.ts";
import { checkCanSignIn, type SignedIn, startSession } from "../accounts/sign-in.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { sha256 } from "../crypto.ts";
import type { SessionRow } from "../sessions.ts";
import { clearAccountThrottle } from "../throttle/failures.ts";
import { challengeBytes, type ProofPurpose, spendCeremony, startCeremony } from "./ceremony.ts";
import { transportsOf, uuidFromHandle } from "./registration.ts";
import { CEREMONY_TIMEOUT_MS, passkeyAmr, relyingParty } from "./relying-party.ts";
import { webauthn } from "./webauthn.ts";

type Options = { token: string; expiresAt: Date; options: PublicKeyCredentialRequestOptionsJSON };

/**
 * Signing in with a passkey alone (discoverable credential, no email typed; also what the browser's autofill uses):
 * options with no allowCredentials and user verification required. The verified key names the account.
 */
export async function beginPasskeySignIn(ctx: CoreContext): Promise<Options> {
  const ceremony = await startCeremony(ctx, { purpose: "sign_in" });
  const options = await (await webauthn()).generateAuthenticationOptions({
    rpID: relyingParty(ctx.config).id,
    challenge: challengeBytes(ceremony.challenge),
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification: "required",
  });
  return { token: ceremony.token, expiresAt: ceremony.expiresAt, options };
}

/**
 * The passkey as the second step after a right password: the browser's half-finished sign-in (the MFA challenge
 * cookie) must be live; the options list that user's passkeys only. User verification is preferred, not required:
 * the password already was the knowledge factor.
 */
export async function beginPasskeySecondStep(ctx: CoreContext, mfaToken: string | undefined): Promise<Options> {
  const found =
    mfaToken && mfaToken.length <= 200 ? await findLiveMfaChallenge(ctx.db, sha256(mfaToken), ctx.clock.now()) : null;
  if (!found) throw new AppError("MFA_CHALLENGE_EXPIRED");
  const keys = await listPasskeys(ctx.db, found.challenge.userId);
  if (keys.length === 0) throw new AppError("PASSKEY_NOT_FOUND", "This account has no passkey. Use a code instead.");
  const ceremony = await startCeremony(ctx, {
    purpose: "second_step",
    userId: found.challenge.userId,
    mfaChallengeId: found.challenge.id,
  });
  const options = await (await webauthn()).generateAuthenticationOptions({
    rpID: relyingParty(ctx.config).id,
    challenge: challengeBytes(ceremony.challenge),
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification: "preferred",
    allowCredentials: keys.map((p) => ({ id: p.credentialId, transports: transportsOf(p) })),
  });
  return { token: ceremony.token, expiresAt: ceremony.expiresAt, options };
}

/**
 * A passkey as the proof of one known account outside sign-in (the pending link of libraries/federation): the options
 * list that account's passkeys only, and user verification is required, as in passkey sign-in, because the key stands
 * alone here (no password before it). The ceremony is bound to the account and to its purpose.
 */
export async function beginPasskeyProof(
  ctx: CoreContext,
  input: { purpose: ProofPurpose; userId: string },
): Promise<Options> {
  const keys = await listPasskeys(ctx.db, input.userId);
  if (keys.length === 0) throw new AppError("PASSKEY_NOT_FOUND");
  const ceremony = await startCeremony(ctx, { purpose: input.purpose, userId: input.userId });
  const options = await (await webauthn()).generateAuthenticationOptions({
    rpID: relyingParty(ctx.config).id,
    challenge: challengeBytes(ceremony.challenge),
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification: "required",
    allowCredentials: keys.map((p) => ({ id: p.credentialId, transports: transportsOf(p) })),
  });
  return { token: ceremony.token, expiresAt: ceremony.expiresAt, options };
}

/**
 * The assertion of a `beginPasskeyProof` ceremony the caller has spent (`spendCeremony` with the same purpose): made
 * by a key of the account the ceremony was begun for (another user's key is refused as `other_user`, PASSKEY_INVALID),
 * with user verification, and a counter that grew (recorded). Signs nobody in: the caller decides what the proof
 * unlocks, and `passkeyAmr` of the result (afterPassword: false) is the sign-in's `amr`, as for passkey sign-in.
 */
export async function verifyPasskeyProof(
  ctx: CoreContext,
  input: { credential: AuthenticationResponseJSON; meta: RequestMeta; purpose: ProofPurpose },
  ceremony: PasskeyChallengeRow,
): Promise<{ passkey: PasskeyRow; userVerified: boolean; backedUp: boolean }> {
  // A ceremony of another purpose (a registration is bound to a user too) never stands as a proof.
  if (!ceremony.userId || ceremony.purpose !== input.purpose) throw new AppError("PASSKEY_CHALLENGE_EXPIRED");
  return verifyAssertion(ctx, { token: undefined, credential: input.credential, meta: input.meta }, ceremony, {
    requireUserVerification: true,
    userId: ceremony.userId,
  });
}

interface Finish {
  token: string | undefined;
  credential: AuthenticationResponseJSON;
  meta: RequestMeta;
  existing?: SessionRow | null | undefined;
  clientId?: string | undefined;
}

/** Passkey alone: ceremony spent → assertion verified (UV required) → account may sign in → session. */
export async function finishPasskeySignIn(ctx: AppContext, input: Finish): Promise<SignedIn> {
  const ceremony = await spendCeremony(ctx, input.token, "sign_in");
  const used = await verifyAssertion(ctx, input, ceremony, { requireUserVerification: true });
  return signInAs(ctx, input, used.passkey.userId, passkeyAmr({ ...used, afterPassword: false }));
}

/**
 * Passkey after the password: ceremony spent → the MFA challenge it was made for still live in this browser (one
 * more guess counted on it) → an assertion by one of that user's keys → the MFA challenge spent → session with
 * `pwd` + the key's `amr`.
 */
export async function finishPasskeySecondStep(
  ctx: AppContext,
  input: Finish & { mfaToken: string | undefined },
): Promise<SignedIn> {
  const ceremony = await spendCeremony(ctx, input.token, "second_step");
  const now = ctx.clock.now();
  const found =
    input.mfaToken && input.mfaToken.length <= 200
      ? await findLiveMfaChallenge(ctx.db, sha256(input.mfaToken), now)
      : null;
  if (!found || found.challenge.id !== ceremony.mfaChallengeId) throw new AppError("MFA_CHALLENGE_EXPIRED");
  const max = ctx.config.mfa.challengeMaxAttempts;
  if (!(await countMfaChallengeAttempt(ctx.db, found.challenge.id, max, now))) {
    throw new AppError("MFA_CHALLENGE_EXPIRED");
  }
  const used = await verifyAssertion(ctx, input, ceremony, {
    requireUserVerification: false,
    userId: found.challenge.userId,
  });
  if (!(await consumeMfaChallenge(ctx.db, found.challenge.id, ctx.clock.now()))) {
    throw new AppError("MFA_CHALLENGE_EXPIRED");
  }
  await audit(ctx.db, input.meta, {
    event: "mfa.verified",
    outcome: "success",
    userId: found.challenge.userId,
    details: { method: "passkey", passkeyId: used.passkey.id },
  });
  await clearAccountThrottle(ctx, found.email, found.challenge.userId);
  return signInAs(ctx, input, used.passkey.userId, passkeyAmr({ ...used, afterPassword: true }));
}

async function signInAs(ctx: AppContext, input: Finish, userId: string, amr: string[]): Promise<SignedIn> {
  const user = await findUserById(ctx.db, userId);
  if (!user) throw new AppError("PASSKEY_INVALID");
  checkCanSignIn(ctx, user);
  return startSession(ctx, { user, amr, meta: input.meta, existing: input.existing, clientId: input.clientId });
}

/**
 * The checks of one assertion, in order: the credential is known (and, for the second step, that user's; a user
 * handle, when sent, names the same account) → @simplewebauthn/server checks the challenge, origin, RP ID hash, UP
 * (and UV when required) and the signature → the signature counter must have grown (unless the authenticator never
 * counts: 0 and 0) → the counter is written compare-and-set, so two assertions with one counter value cannot both
 * pass. Every refusal is audited under the key's owner with its reason, and changes nothing.
 */
async function verifyAssertion(
  ctx: CoreContext,
  input: Finish,
  ceremony: PasskeyChallengeRow,
  rules: { requireUserVerification: boolean; userId?: string },
): Promise<{ passkey: PasskeyRow; userVerified: boolean; backedUp: boolean }> {
  const refuse = async (
    reason: string,
    userId: string | null,
    code: "PASSKEY_INVALID" | "PASSKEY_COUNTER_MISMATCH" = "PASSKEY_INVALID",
  ) => {
    await audit(ctx.db, input.meta, {
      event: "passkey.assertion_refused",
      outcome: "failure",
      userId,
      details: { reason, purpose: ceremony.purpose },
    });
    return new AppError(code);
  };
  const passkey = await findPasskeyByCredentialId(ctx.db, input.credential.id);
  if (!passkey) throw await refuse("unknown_credential", rules.userId ?? null);
  if (rules.userId && passkey.userId !== rules.userId) throw await refuse("other_user", rules.userId);
  const handle = input.credential.response.userHandle;
  if (handle && uuidFromHandle(handle) !== passkey.userId) throw await refuse("user_handle", passkey.userId);

  const rp = relyingParty(ctx.config);
  let info: Awaited<ReturnType<typeof verifyAuthenticationResponse>>["authenticationInfo"];
  try {
    const result = await (await webauthn()).verifyAuthenticationResponse({
      response: input.credential,
      expectedChallenge: ceremony.challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      // The counter rule is applied below (audited under its own reason, and atomically with the write), so the
      // library is given 0 and does not apply its own.
      credential: { id: passkey.credentialId, publicKey: Buffer.from(passkey.publicKey, "base64url"), counter: 0 },
      requireUserVerification: rules.requireUserVerification,
    });
    if (!result.verified) throw new Error("not verified");
    info = result.authenticationInfo;
  } catch {
    throw await refuse("verification", passkey.userId);
  }
  const counterOk = info.newCounter > passkey.counter || (info.newCounter === 0 && passkey.counter === 0);
  if (!counterOk) throw await refuse("counter", passkey.userId, "PASSKEY_COUNTER_MISMATCH");
  const recorded = await recordPasskeyUse(ctx.db, {
    id: passkey.id,
    expectedCounter: passkey.counter,
    newCounter: info.newCounter,
    backedUp: info.credentialBackedUp,
    now: ctx.clock.now(),
  });
  if (!recorded) throw await refuse("counter", passkey.userId, "PASSKEY_COUNTER_MISMATCH");
  return { passkey, userVerified: info.userVerified, backedUp: info.credentialBackedUp };
}
