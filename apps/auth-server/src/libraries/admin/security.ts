import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { type AccountThrottleRow, deleteAccountThrottleKey, lockedAccountKeys } from "../../queries/admin-console.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { rotateSigningKey, SIGNING_ALGS, type SigningAlg } from "../keys/index.ts";

/** The console's and admin API's security actions (#14) that have no library function of their own elsewhere. */

const via = (actor: Actor) => (actor.via ? { via: actor.via } : {});

export interface AccountLockView {
  /** The throttle key: an HMAC of the email (or `otp:` + one of the user id), never the email itself. */
  key: string;
  failures: number;
  lockedUntil: Date | null;
  kind: "password" | "code";
}

const lockView = (row: AccountThrottleRow): AccountLockView => ({
  key: row.key,
  failures: row.failures,
  lockedUntil: row.lockedUntil,
  kind: row.key.startsWith("otp:") ? "code" : "password",
});

/** Accounts locked right now after failed sign-ins (or failed codes), soonest to end first. */
export async function listAccountLocks(deps: CoreContext, limit = 100): Promise<AccountLockView[]> {
  return (await lockedAccountKeys(deps.db, deps.clock.now(), limit)).map(lockView);
}

const THROTTLE_KEY = /^(otp:)?[0-9a-f]{64}$/;

/** Clears one lock by its key (from the list). Support may do it. NOT_FOUND when there is nothing to clear. */
export async function clearAccountLock(deps: CoreContext, key: string, actor: Actor): Promise<void> {
  if (!THROTTLE_KEY.test(key)) throw new AppError("NOT_FOUND", "No account lock with that key.");
  await deps.db.transaction(async (tx) => {
    if (!(await deleteAccountThrottleKey(tx, key))) throw new AppError("NOT_FOUND", "No account lock with that key.");
    await audit(tx, actor.meta, {
      event: "throttle.account_unlocked",
      outcome: "success",
      actorId: actor.actorId,
      details: { ...via(actor), key: key.slice(0, 16) },
    });
  });
}

/** Rotates the signing key of an algorithm (the configured one by default), audited with the admin. */
export async function rotateSigningKeyAsAdmin(
  deps: CoreContext,
  alg: string | undefined,
  actor: Actor,
): Promise<{ kid: string; alg: SigningAlg; retired: string[] }> {
  const chosen = (alg ?? deps.config.tokens.signingAlg) as SigningAlg;
  if (!SIGNING_ALGS.includes(chosen)) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "alg", message: "must be RS256, ES256 or EdDSA" }]);
  }
  const { active, retired } = await rotateSigningKey(deps, chosen);
  await audit(deps.db, actor.meta, {
    event: "admin.signing_key_rotated",
    outcome: "success",
    actorId: actor.actorId,
    details: { ...via(actor), kid: active.kid, alg: active.alg, retired },
  });
  return { kid: active.kid, alg: active.alg, retired };
}
