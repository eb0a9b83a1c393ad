import { randomBytes } from "node:crypto";
import type { Executor } from "@tessera/db";
import { Secret, TOTP } from "otpauth";
import QRCode from "qrcode";
import type { Config } from "../config/index.ts";
import type { CoreContext } from "../context.ts";
import { AppError } from "../errors/index.ts";
import {
  confirmedTotpExists,
  consumeMfaChallenge,
  countMfaChallengeAttempt,
  countUnusedRecoveryCodes,
  deleteRecoveryCodes,
  deleteTotpFactor,
  findLiveMfaChallenge,
  findTotpFactor,
  insertMfaChallenge,
  replaceRecoveryCodes,
  upsertPendingTotpFactor,
  useRecoveryCode,
  useTotpStep,
} from "../queries/totp.ts";
import type { UserRow } from "../queries/users.ts";
import { renderView } from "../views/index.ts";
import { audit, type RequestMeta } from "./audit.ts";
import { addSeconds } from "./clock.ts";
import { decrypt, encrypt, randomToken, sha256 } from "./crypto.ts";
import type { MailMessage } from "./mailer/types.ts";
import { checkPasswordAgain } from "./password-step.ts";
import { clearAccountThrottle, recordSignInFailure } from "./throttle/failures.ts";
import { accountLockBlocks, accountLockedError, checkSignIn, oneAtATime } from "./throttle/gate.ts";
import { secondFactorKey } from "./throttle/keys.ts";

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

const aad = (userId: string) => `totp:${userId}`;

function totpFor(secretBase32: string, label = "", issuer = ""): TOTP {
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
const normalizeOtp = (code: string) => code.replace(/[\s-]/g, "");

export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, "").replace(/o/g, "0").replace(/[il]/g, "1");
}

function newRecoveryCode(): string {
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

export interface Enrolment {
  /** Base32, for typing into an app by hand. */
  secret: string;
  otpauthUri: string;
  /** An SVG QR code of the otpauth URI as a data: URL (the CSP allows `img-src data:`). */
  qrCodeDataUrl: string;
}

/**
 * Starts (or restarts) enrolment: a fresh secret, stored encrypted and unconfirmed. MFA_ALREADY_ENABLED when the user
 * already has a confirmed factor (disable it first). EMAIL_NOT_VERIFIED before the address is confirmed: whoever
 * registered someone else's address (and can sign in to the unverified account) must not be able to put their own
 * factor on it, or the address's owner, after taking the account back with a reset link, could never sign in.
 */
export async function beginTotpEnrolment(
  deps: CoreContext,
  meta: RequestMeta,
  user: { id: string; email: string; emailVerifiedAt: Date | null },
): Promise<Enrolment> {
  if (!user.emailVerifiedAt) {
    throw new AppError("EMAIL_NOT_VERIFIED", "Confirm your email address before you turn on two-step verification.");
  }
  const secret = new Secret({ size: 20 }).base32;
  const sealed = encrypt(deps.config.masterKey, secret, aad(user.id));
  const row = await upsertPendingTotpFactor(deps.db, user.id, sealed, deps.clock.now());
  if (!row) throw new AppError("MFA_ALREADY_ENABLED");
  await audit(deps.db, meta, { event: "mfa.enrolment_started", outcome: "success", userId: user.id });
  return enrolmentView(deps, user, secret);
}

/**
 * Confirms enrolment with a code from the app; returns the ten recovery codes, to be shown once. INVALID_OTP for a
 * wrong code, MFA_NOT_ENABLED when no enrolment is pending.
 */
export async function confirmTotpEnrolment(
  deps: CoreContext,
  meta: RequestMeta,
  input: { userId: string; code: string },
): Promise<{ recoveryCodes: string[] }> {
  const factor = await findTotpFactor(deps.db, input.userId);
  if (!factor || factor.confirmedAt) throw new AppError(factor ? "MFA_ALREADY_ENABLED" : "MFA_NOT_ENABLED");
  const now = deps.clock.now();
  const step = matchingStep(
    decrypt(deps.config.masterKey, factor.secretEncrypted, aad(input.userId)),
    normalizeOtp(input.code),
    now,
  );
  if (step === null) {
    await audit(deps.db, meta, { event: "mfa.enrolment_confirmed", outcome: "failure", userId: input.userId });
    throw new AppError("INVALID_OTP", undefined, [{ field: "code", message: "That code is not valid." }]);
  }
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  await deps.db.transaction(async (tx) => {
    const confirmed = await useTotpStep(tx, { userId: input.userId, step, now, confirming: true });
    if (!confirmed)
      throw new AppError("INVALID_OTP", undefined, [{ field: "code", message: "That code is not valid." }]);
    await replaceRecoveryCodes(
      tx,
      input.userId,
      codes.map((c) => sha256(normalizeRecoveryCode(c))),
      now,
    );
    await audit(tx, meta, { event: "mfa.enabled", outcome: "success", userId: input.userId });
  });
  return { recoveryCodes: codes };
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

/**
 * Runs a change that needs a code from a signed-in user (turning the factor off, new recovery codes) under the same
 * guard as the second sign-in step: in line per user, refused during the code step's delay or lock, and a wrong code
 * (INVALID_OTP) counted under `secondFactorKey`. Without it, a stolen session could guess codes here at the request
 * limit's pace with nothing counted, and a right guess turns the factor off or mints recovery codes.
 */
function withCodeGuard<T>(deps: CoreContext, meta: RequestMeta, userId: string, change: () => Promise<T>): Promise<T> {
  const key = secondFactorKey(deps.config, userId);
  return oneAtATime(key, async () => {
    const gate = await checkSignIn(deps, meta, { key, userId });
    const locked = accountLockBlocks(gate, { passwordOk: false, hasSecondFactor: false });
    if (locked) throw locked;
    try {
      return await change();
    } catch (error) {
      if (error instanceof AppError && error.code === "INVALID_OTP") {
        const counted = await recordSignInFailure(deps, meta, { key, userId, reason: "otp" });
        if (counted.accountLockedUntil) throw accountLockedError(counted.accountLockedUntil, deps.clock.now());
      }
      throw error;
    }
  });
}

/** Turns the factor off (the caller has checked the password); needs a valid code too. Recovery codes go with it. */
export async function disableTotp(
  deps: CoreContext,
  meta: RequestMeta,
  input: { userId: string; code: string },
): Promise<void> {
  await withCodeGuard(deps, meta, input.userId, () => disableTotpChecked(deps, meta, input));
}

async function disableTotpChecked(deps: CoreContext, meta: RequestMeta, input: { userId: string; code: string }) {
  await deps.db.transaction(async (tx) => {
    if (!(await hasConfirmedTotp(tx, input.userId))) throw new AppError("MFA_NOT_ENABLED");
    const used = await useSecondFactor(deps, tx, input.userId, input.code);
    if (!used) throw new AppError("INVALID_OTP", undefined, [{ field: "code", message: "That code is not valid." }]);
    await deleteTotpFactor(tx, input.userId);
    await deleteRecoveryCodes(tx, input.userId);
    await audit(tx, meta, { event: "mfa.disabled", outcome: "success", userId: input.userId, details: { with: used } });
  });
}

/**
 * Turning the factor off from the account page: the current password (counted and throttled like a sign-in,
 * `checkPasswordAgain`) and then a valid code or recovery code.
 */
export async function disableTotpWithPassword(
  deps: CoreContext,
  meta: RequestMeta,
  input: { user: UserRow; password: string; code: string },
): Promise<void> {
  try {
    await checkPasswordAgain(deps, { user: input.user, password: input.password, meta, field: "password" });
  } catch (error) {
    await audit(deps.db, meta, {
      event: "mfa.disabled",
      outcome: "failure",
      userId: input.user.id,
      details: { reason: error instanceof AppError ? error.code : "error" },
    });
    throw error;
  }
  await disableTotp(deps, meta, { userId: input.user.id, code: input.code });
}

/** The enrolment still waiting for its confirmation code (to show the same QR code again), or null. */
export async function pendingTotpEnrolment(
  deps: CoreContext,
  user: { id: string; email: string },
): Promise<Enrolment | null> {
  const factor = await findTotpFactor(deps.db, user.id);
  if (!factor || factor.confirmedAt) return null;
  return enrolmentView(deps, user, decrypt(deps.config.masterKey, factor.secretEncrypted, aad(user.id)));
}

async function enrolmentView(deps: CoreContext, user: { email: string }, secret: string): Promise<Enrolment> {
  const otpauthUri = totpFor(secret, user.email, deps.config.mail.fromName).toString();
  const svg = await QRCode.toString(otpauthUri, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
  return { secret, otpauthUri, qrCodeDataUrl: `data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}` };
}

/** New recovery codes (the old ones stop working); needs a valid code. */
export async function regenerateRecoveryCodes(
  deps: CoreContext,
  meta: RequestMeta,
  input: { userId: string; code: string },
): Promise<{ recoveryCodes: string[] }> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  const replace = () =>
    deps.db.transaction(async (tx) => {
      if (!(await hasConfirmedTotp(tx, input.userId))) throw new AppError("MFA_NOT_ENABLED");
      const used = await useSecondFactor(deps, tx, input.userId, input.code);
      if (!used) throw new AppError("INVALID_OTP", undefined, [{ field: "code", message: "That code is not valid." }]);
      await replaceRecoveryCodes(
        tx,
        input.userId,
        codes.map((c) => sha256(normalizeRecoveryCode(c))),
        deps.clock.now(),
      );
      await audit(tx, meta, { event: "mfa.recovery_codes_regenerated", outcome: "success", userId: input.userId });
    });
  await withCodeGuard(deps, meta, input.userId, replace);
  return { recoveryCodes: codes };
}

// ---------------------------------------------------------------------------------------------------------------------
// The second sign-in step

/**
 * After a correct password for a user with a confirmed factor: records the half-finished sign-in and returns the
 * random value for the browser's short-lived cookie. No session exists yet.
 */
export async function createMfaChallenge(
  deps: CoreContext,
  db: Executor,
  userId: string,
): Promise<{ token: string; expiresAt: Date }> {
  const now = deps.clock.now();
  const token = randomToken();
  const expiresAt = addSeconds(now, deps.config.mfa.challengeTtlSeconds);
  await insertMfaChallenge(db, { tokenHash: sha256(token), userId, createdAt: now, expiresAt });
  return { token, expiresAt };
}

/** Whether a challenge cookie value is live (for showing the code page); never consumes anything. */
export async function peekMfaChallenge(deps: CoreContext, token: string | undefined): Promise<boolean> {
  if (!token || token.length > 200) return false;
  return Boolean(await findLiveMfaChallenge(deps.db, sha256(token), deps.clock.now()));
}

/**
 * The code step: checks the challenge (MFA_CHALLENGE_EXPIRED when unknown, expired, used or out of guesses), the IP
 * suspension and the account's throttling delay, counts the guess, and checks the code (INVALID_OTP, counted as a
 * failed sign-in for the IP and the account). On success the challenge is spent in the same transaction as the code,
 * the account's failure counter is cleared, and the user id is returned for the caller to start the session with
 * `amr: ["pwd", "otp"]`. An account lock does not block this step: the password was right and the factor is
 * proving possession.
 */
export async function completeMfaChallenge(
  deps: CoreContext,
  meta: RequestMeta,
  input: { token: string | undefined; code: string; onLocked?: (email: string, until: Date) => Promise<void> },
): Promise<{ userId: string; method: "otp" | "recovery_code" }> {
  const expired = () => new AppError("MFA_CHALLENGE_EXPIRED");
  if (!input.token || input.token.length > 200) throw expired();
  const found = await findLiveMfaChallenge(deps.db, sha256(input.token), deps.clock.now());
  if (!found) throw expired();
  const { challenge, email } = found;
  // Wrong codes have their own counter (delays, then a lock): the password's lock does not apply here. Guesses of one
  // user run one at a time (throttle/gate.ts `oneAtATime`), so codes sent in parallel over many challenges each see the
  // failures before them.
  const key = secondFactorKey(deps.config, challenge.userId);
  return oneAtATime(key, () => checkCodeInLine(deps, meta, input, { challenge, email, key }));
}

async function checkCodeInLine(
  deps: CoreContext,
  meta: RequestMeta,
  input: { code: string; onLocked?: (email: string, until: Date) => Promise<void> },
  found: { challenge: { id: string; userId: string }; email: string; key: string },
): Promise<{ userId: string; method: "otp" | "recovery_code" }> {
  const expired = () => new AppError("MFA_CHALLENGE_EXPIRED");
  const { challenge, email, key } = found;
  const gate = await checkSignIn(deps, meta, { key, userId: challenge.userId });
  const locked = accountLockBlocks(gate, { passwordOk: false, hasSecondFactor: false });
  if (locked) throw locked;
  const counted = await countMfaChallengeAttempt(
    deps.db,
    challenge.id,
    deps.config.mfa.challengeMaxAttempts,
    deps.clock.now(),
  );
  if (!counted) throw expired();

  const method = await deps.db.transaction(async (tx) => {
    const used = await useSecondFactor(deps, tx, challenge.userId, input.code);
    if (!used) return null;
    if (!(await consumeMfaChallenge(tx, challenge.id, deps.clock.now()))) throw expired();
    await audit(tx, meta, {
      event: "mfa.verified",
      outcome: "success",
      userId: challenge.userId,
      details: { method: used },
    });
    return used;
  });
  if (!method) {
    await audit(deps.db, meta, { event: "mfa.verified", outcome: "failure", userId: challenge.userId });
    const counted = await recordSignInFailure(deps, meta, {
      key,
      userId: challenge.userId,
      reason: "otp",
      onLocked: input.onLocked ? (until) => input.onLocked?.(email, until) ?? Promise.resolve() : undefined,
    });
    if (counted.accountLockedUntil) throw accountLockedError(counted.accountLockedUntil, deps.clock.now());
    throw new AppError("INVALID_OTP", undefined, [{ field: "code", message: "That code is not valid." }]);
  }
  await clearAccountThrottle(deps, email, challenge.userId);
  return { userId: challenge.userId, method };
}

// ---------------------------------------------------------------------------------------------------------------------
// Authentication strength for OpenID clients (`acr_values` in, `acr` out)

/** A sign-in with one factor (a password). */
export const ACR_SINGLE_FACTOR = "urn:tessera:acr:sfa";
/** A sign-in with a password and a second factor (`amr` has `otp`). */
export const ACR_MULTI_FACTOR = "urn:tessera:acr:mfa";
/** The PAPE multi-factor policy URI, accepted as a synonym because many client libraries know it. */
const PAPE_MULTI_FACTOR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
export const ACR_VALUES_SUPPORTED = [ACR_SINGLE_FACTOR, ACR_MULTI_FACTOR];

/** The `acr` of a session, from its `amr`. */
export function acrFor(amr: readonly string[]): string {
  return amr.includes("otp") ? ACR_MULTI_FACTOR : ACR_SINGLE_FACTOR;
}

/**
 * Whether `acr_values` demand a second factor: at least one value we know is requested and every value we know needs
 * a second factor (a client that also lists the single-factor value accepts it). Unknown values are ignored.
 */
export function acrValuesDemandSecondFactor(acrValues: string | undefined): boolean {
  const known = (acrValues ?? "")
    .split(" ")
    .filter((v) => v === ACR_SINGLE_FACTOR || v === ACR_MULTI_FACTOR || v === PAPE_MULTI_FACTOR);
  return known.length > 0 && !known.includes(ACR_SINGLE_FACTOR);
}

// ---------------------------------------------------------------------------------------------------------------------
// Notices to the account owner

const CHANGE_TEXT = {
  mfa_enabled: {
    subject: "Two-step verification is on",
    intro: "Two-step verification was turned on for your account: signing in now also asks for a code from your app.",
  },
  mfa_disabled: {
    subject: "Two-step verification is off",
    intro: "Two-step verification was turned off for your account: signing in now needs only your password.",
  },
  mfa_recovery_codes: {
    subject: "New recovery codes",
    intro: "New recovery codes were made for your account; the old ones no longer work.",
  },
} as const;

/** The email telling the owner that their second factor changed (so an unexpected change is noticed). */
export function mfaChangedEmail(config: Config, to: string, kind: keyof typeof CHANGE_TEXT): MailMessage {
  const product = config.mail.fromName;
  const content = {
    subject: `${CHANGE_TEXT[kind].subject} · ${product}`,
    intro: CHANGE_TEXT[kind].intro,
    action: { label: "Review your account", url: new URL("/account/mfa", `${config.issuer}/`).toString() },
    outro: "If this was not you, reset your password now and review where you are signed in.",
  };
  const text = [content.intro, `${content.action.label}:\n${content.action.url}`, content.outro, `— ${product}`].join(
    "\n\n",
  );
  return { to, subject: content.subject, text, html: renderView("emails/account", { ...content, product }), kind };
}
