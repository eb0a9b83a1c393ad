import type {
  PublicKeyCredentialCreationOptionsJSON,
  RegistrationResponseJSON,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { insertPasskey, listPasskeys, type PasskeyRow } from "../../queries/passkeys.ts";
import type { UserRow } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { challengeBytes, spendCeremony, startCeremony } from "./ceremony.ts";
import { reauthenticate } from "./reauth.ts";
import { CEREMONY_TIMEOUT_MS, relyingParty } from "./relying-party.ts";
import { webauthn } from "./webauthn.ts";

/**
 * Adding a passkey from the account page, in two requests:
 *
 *   begin   signed in + a fresh password or code (reauth.ts) → a `register` ceremony bound to this session → options
 *           (discoverable credential required, user verification required, the user's existing credentials excluded)
 *   finish  the same browser's ceremony, spent once, for the same session → the attestation checked by
 *           @simplewebauthn/server (challenge, origin, RP ID, UV flag; attestation `none`: we trust no vendor list)
 *           → the credential stored with its counter, transports and backup flags.
 */
export async function beginPasskeyRegistration(
  ctx: CoreContext,
  meta: RequestMeta,
  input: { user: UserRow; sessionId: string; password?: string | undefined; code?: string | undefined },
): Promise<{ token: string; expiresAt: Date; options: PublicKeyCredentialCreationOptionsJSON }> {
  const { user } = input;
  try {
    await reauthenticate(ctx, meta, user, input);
  } catch (error) {
    await audit(ctx.db, meta, {
      event: "passkey.added",
      outcome: "failure",
      userId: user.id,
      details: { reason: error instanceof AppError ? error.code : "error" },
    });
    throw error;
  }
  const ceremony = await startCeremony(ctx, { purpose: "register", userId: user.id, sessionId: input.sessionId });
  const rp = relyingParty(ctx.config);
  const existing = await listPasskeys(ctx.db, user.id);
  const options = await (await webauthn()).generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    // The user handle is the account's uuid: stable, and no personal data on the authenticator beyond the label.
    userID: uuidBytes(user.id),
    userName: user.email,
    userDisplayName: user.displayName ?? user.email,
    challenge: challengeBytes(ceremony.challenge),
    timeout: CEREMONY_TIMEOUT_MS,
    attestationType: "none",
    excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: transportsOf(p) })),
    authenticatorSelection: { residentKey: "required", userVerification: "required" },
  });
  return { token: ceremony.token, expiresAt: ceremony.expiresAt, options };
}

export async function finishPasskeyRegistration(
  ctx: CoreContext,
  meta: RequestMeta,
  input: {
    user: UserRow;
    sessionId: string;
    token: string | undefined;
    credential: RegistrationResponseJSON;
    name?: string | undefined;
  },
): Promise<PasskeyRow> {
  const { user } = input;
  const fail = async (reason: string, code: "PASSKEY_INVALID" | "PASSKEY_ALREADY_REGISTERED" = "PASSKEY_INVALID") => {
    await audit(ctx.db, meta, { event: "passkey.added", outcome: "failure", userId: user.id, details: { reason } });
    return new AppError(code);
  };
  const ceremony = await spendCeremony(ctx, input.token, "register");
  if (ceremony.userId !== user.id || ceremony.sessionId !== input.sessionId) throw await fail("other_session");
  const rp = relyingParty(ctx.config);
  let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    verified = await (await webauthn()).verifyRegistrationResponse({
      response: input.credential,
      expectedChallenge: ceremony.challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      requireUserVerification: true,
    });
  } catch {
    throw await fail("verification");
  }
  if (!verified.verified) throw await fail("verification");
  const info = verified.registrationInfo;
  const count = (await listPasskeys(ctx.db, user.id)).length;
  const row = await ctx.db.transaction(async (tx) => {
    const inserted = await insertPasskey(tx, {
      userId: user.id,
      credentialId: info.credential.id,
      publicKey: Buffer.from(info.credential.publicKey).toString("base64url"),
      counter: info.credential.counter,
      transports: info.credential.transports ?? [],
      backupEligible: info.credentialDeviceType === "multiDevice",
      backedUp: info.credentialBackedUp,
      name: input.name ?? `Passkey ${count + 1}`,
      createdAt: ctx.clock.now(),
    });
    if (!inserted) return null;
    await audit(tx, meta, {
      event: "passkey.added",
      outcome: "success",
      userId: user.id,
      sessionId: input.sessionId,
      details: { passkeyId: inserted.id, backedUp: inserted.backedUp },
    });
    return inserted;
  });
  if (!row) throw await fail("duplicate", "PASSKEY_ALREADY_REGISTERED");
  return row;
}

export function transportsOf(p: PasskeyRow) {
  return p.transports as NonNullable<RegistrationResponseJSON["response"]["transports"]>;
}

/** The 16 bytes of a uuid (the WebAuthn user handle). */
export function uuidBytes(id: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(id.replace(/-/g, ""), "hex"));
}

/** A user handle (base64url of 16 bytes) back to the uuid, or null. */
export function uuidFromHandle(handle: string): string | null {
  const hex = Buffer.from(handle, "base64url").toString("hex");
  if (hex.length !== 32) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
