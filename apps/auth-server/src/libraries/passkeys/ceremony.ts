import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { consumePasskeyChallenge, insertPasskeyChallenge, type PasskeyChallengeRow } from "../../queries/passkeys.ts";
import { addSeconds } from "../clock.ts";
import { randomToken, sha256 } from "../crypto.ts";
import { CHALLENGE_TTL_SECONDS } from "./relying-party.ts";

/**
 * One WebAuthn ceremony: a fresh 256-bit challenge for the authenticator to sign, stored with what it is for, and a
 * separate 256-bit value for the browser's short-lived cookie (only its SHA-256 is stored). The challenge is accepted
 * only back from the browser holding that cookie, for the same purpose, once, within five minutes: a challenge seen
 * by another browser, or replayed, or used for another purpose (a sign-in challenge to register, say) is refused.
 */
export type CeremonyPurpose = "register" | "sign_in" | "second_step" | ProofPurpose;

/** A passkey proving one known account outside sign-in (libraries/passkeys/authentication.ts `beginPasskeyProof`). */
export type ProofPurpose = "federation_link";

export interface Ceremony {
  /** For the cookie (routes/api/passkeys.ts); never stored, never logged. */
  token: string;
  /** base64url, for the options sent to the browser. */
  challenge: string;
  expiresAt: Date;
}

export async function startCeremony(
  ctx: CoreContext,
  input: { purpose: CeremonyPurpose; userId?: string; sessionId?: string; mfaChallengeId?: string },
): Promise<Ceremony> {
  const now = ctx.clock.now();
  const token = randomToken();
  const challenge = randomToken();
  const expiresAt = addSeconds(now, CHALLENGE_TTL_SECONDS);
  await insertPasskeyChallenge(ctx.db, {
    tokenHash: sha256(token),
    challenge,
    purpose: input.purpose,
    userId: input.userId ?? null,
    sessionId: input.sessionId ?? null,
    mfaChallengeId: input.mfaChallengeId ?? null,
    createdAt: now,
    expiresAt,
  });
  return { token, challenge, expiresAt };
}

/** Spends the browser's ceremony of this purpose; PASSKEY_CHALLENGE_EXPIRED when there is none to spend. */
export async function spendCeremony(
  ctx: CoreContext,
  token: string | undefined,
  purpose: CeremonyPurpose,
): Promise<PasskeyChallengeRow> {
  if (!token || token.length > 200) throw new AppError("PASSKEY_CHALLENGE_EXPIRED");
  const row = await consumePasskeyChallenge(ctx.db, { tokenHash: sha256(token), purpose, now: ctx.clock.now() });
  if (!row) throw new AppError("PASSKEY_CHALLENGE_EXPIRED");
  return row;
}

/** The challenge's 32 bytes: the library base64url-encodes bytes as they are, but a string only after UTF-8. */
export function challengeBytes(challenge: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(challenge, "base64url"));
}
