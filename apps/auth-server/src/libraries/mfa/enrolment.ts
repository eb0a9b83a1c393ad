import { Secret } from "otpauth";
import QRCode from "qrcode";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  deleteRecoveryCodes,
  deleteTotpFactor,
  findTotpFactor,
  replaceRecoveryCodes,
  upsertPendingTotpFactor,
  useTotpStep,
} from "../../queries/totp.ts";
import type { UserRow } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { decrypt, encrypt, sha256 } from "../crypto.ts";
import { checkPasswordAgain } from "../password-step.ts";
import { recordSignInFailure } from "../throttle/failures.ts";
import { accountLockBlocks, accountLockedError, checkSignIn, oneAtATime } from "../throttle/gate.ts";
import { secondFactorKey } from "../throttle/keys.ts";
import {
  aad,
  hasConfirmedTotp,
  matchingStep,
  newRecoveryCode,
  normalizeOtp,
  normalizeRecoveryCode,
  RECOVERY_CODE_COUNT,
  totpFor,
  useSecondFactor,
} from "./factor.ts";

/**
 * How long a started enrolment can be confirmed (and its secret shown again): the enrolment began after a
 * re-authentication (start-enrolment.ts), and a session left alone later must not finish it and keep the codes.
 */
export const PENDING_ENROLMENT_SECONDS = 15 * 60;

const pendingIsFresh = (factor: { createdAt: Date }, now: Date) =>
  now.getTime() - factor.createdAt.getTime() <= PENDING_ENROLMENT_SECONDS * 1000;

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
  if (!pendingIsFresh(factor, now)) throw new AppError("MFA_ENROLMENT_EXPIRED");
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
 * Runs a change that needs a code from a signed-in user (turning the factor off, new recovery codes) under the same
 * guard as the second sign-in step: in line per user, refused during the code step's delay or lock, and a wrong code
 * (INVALID_OTP) counted under `secondFactorKey`. Without it, a stolen session could guess codes here at the request
 * limit's pace with nothing counted, and a right guess turns the factor off or mints recovery codes.
 */
export function withCodeGuard<T>(
  deps: CoreContext,
  meta: RequestMeta,
  userId: string,
  change: () => Promise<T>,
): Promise<T> {
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
  if (!factor || factor.confirmedAt || !pendingIsFresh(factor, deps.clock.now())) return null;
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
