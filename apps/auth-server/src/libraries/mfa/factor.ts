import { randomBytes } from "node:crypto";
import type { Executor } from "@tessera/db";
import { Secret, TOTP } from "otpauth";
import type { CoreContext } from "../../context.ts";
import {
  confirmedTotpExists,
  countUnusedRecoveryCodes,
  findTotpFactor,
  useRecoveryCode,
  useTotpStep,
} from "../../queries/totp.ts";
import { decrypt, sha256 } from "../crypto.ts";

/**
 * TOTP second factor (RFC 6238 through the otpauth library: SHA-1, 6 digits, 30 s, what every authenticator app
 * supports) and single-use recovery codes.
 *
 * - The secret (160 bits) is encrypted at rest with the master key, bound to the user id as associated data so a
 *   ciphertext copied onto another account does not decrypt.
 * - A code is accepted one step either side of now (clock drift), and each time step works once: the factor's
 *   `last_used_step` only moves forward, through a conditional UPDATE, so a replayed or parallel code is rejected.
 * - Ten recovery codes of 80 random bits each, shown once, stored as SHA-256 (their entropy makes a slow hash
 *   unnecessary), each usable once.
 * - Between the password step and the code step the browser holds only a random challenge value (SHA-256 stored,
 *   short-lived, a limited number of guesses); no session exists until the code is right.
 */
const PERIOD_SECONDS = 30;
const DIGITS = 6;
const WINDOW_STEPS = 1;
export const RECOVERY_CODE_COUNT = 10;
/** Crockford's base32 alphabet: no I, L, O, U, so codes read aloud or copied by hand are unambiguous. */
const RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

export const aad = (userId: string) => `totp:${userId}`;

export function totpFor(secretBase32: string, label = "", issuer = ""): TOTP {
  return new TOTP({
    issuer,
    label,
    algorithm: "SHA1",
    digits: DIGITS,
    period: PERIOD_SECONDS,
    secret: Secret.fromBase32(secretBase32),
  });
}

/** The time step a 6-digit code matches around `now`, or null. */
export function matchingStep(secretBase32: string, code: string, now: Date): number | null {
  const delta = totpFor(secretBase32).validate({ token: code, timestamp: now.getTime(), window: WINDOW_STEPS });
  if (delta === null) return null;
  return Math.floor(now.getTime() / 1000 / PERIOD_SECONDS) + delta;
}

/** The current code for a secret (tests and the CLI; the server never shows codes). */
export function currentCode(secretBase32: string, at: Date): string {
  return totpFor(secretBase32).generate({ timestamp: at.getTime() });
}

/** `12 34 56` and `123-456` are accepted as typed by people. */
export const normalizeOtp = (code: string) => code.replace(/[\s-]/g, "");

export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, "").replace(/o/g, "0").replace(/[il]/g, "1");
}

export function newRecoveryCode(): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += RECOVERY_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)?.join("-") ?? out;
}

export interface TotpStatus {
  enabled: boolean;
  /** An enrolment was started but not confirmed. */
  pending: boolean;
  recoveryCodesLeft: number;
}

export async function totpStatus(deps: CoreContext, userId: string): Promise<TotpStatus> {
  const factor = await findTotpFactor(deps.db, userId);
  const enabled = Boolean(factor?.confirmedAt);
  return {
    enabled,
    pending: Boolean(factor && !factor.confirmedAt),
    recoveryCodesLeft: enabled ? await countUnusedRecoveryCodes(deps.db, userId) : 0,
  };
}

export async function hasConfirmedTotp(db: Executor, userId: string): Promise<boolean> {
  return confirmedTotpExists(db, userId);
}

/**
 * Checks a second-factor code for a user with a confirmed factor and uses it up: a TOTP code (its time step can never
 * be used again) or a recovery code (single use). Returns which kind matched, or null. Pass the transaction handle to
 * make the use part of a larger change.
 */
export async function useSecondFactor(
  deps: CoreContext,
  db: Executor,
  userId: string,
  rawCode: string,
): Promise<"otp" | "recovery_code" | null> {
  const factor = await findTotpFactor(db, userId);
  if (!factor?.confirmedAt) return null;
  const now = deps.clock.now();
  const otp = normalizeOtp(rawCode);
  if (/^\d{6}$/.test(otp)) {
    const step = matchingStep(decrypt(deps.config.masterKey, factor.secretEncrypted, aad(userId)), otp, now);
    if (step === null) return null;
    return (await useTotpStep(db, { userId, step, now, confirming: false })) ? "otp" : null;
  }
  const recovery = normalizeRecoveryCode(rawCode);
  if (!/^[0-9a-hjkmnp-tv-z]{16}$/.test(recovery)) return null;
  return (await useRecoveryCode(db, userId, sha256(recovery), now)) ? "recovery_code" : null;
}
