import type { AppContext, CoreContext, Logger } from "../context.ts";
import { AppError } from "../errors/index.ts";
import { findUserByEmail, findUserByEmailForSignIn, replacePasswordHash, type UserRow } from "../queries/users.ts";
import { audit, type RequestMeta } from "./audit.ts";
import { sendInBackground } from "./mailer/index.ts";
import { accountEmail } from "./mailer/messages.ts";
import { hashPassword, verifyAgainstDummy, verifyPassword } from "./passwords.ts";
import { recordSignInFailure } from "./throttle/failures.ts";
import { accountLockBlocks, accountLockedError, checkSignIn, oneAtATime } from "./throttle/gate.ts";
import { accountKey, normalizeEmail } from "./throttle/keys.ts";

/**
 * The one password step, used by every path that checks a password: the sign-in form and API, registering an email
 * that already has an account, direct sign-in (oauth/direct.ts), and the current password typed again on the account
 * forms. In line per account key (throttle/gate.ts `oneAtATime`), it runs
 *
 *   gate    IP suspended? account key still waiting after its last failure? (throws IP_SUSPENDED / LOGIN_THROTTLED)
 *   verify  the password against the account, or the same argon2 work against nothing when there is no account
 *   count   a wrong password counts against the IP and the account key, atomically; a lock tells the owner
 *   lock    a locked account lets a right password through only to a code step (sign-in with a second factor)
 *
 * and answers with the user or the error to show. A wrong password answers the same for every email, known or not.
 */
export type PasswordStep =
  | {
      ok: true;
      user: UserRow;
      hasSecondFactor: boolean;
      /** The account key had failures recorded when the gate read it: the caller's sign-in clears them. */
      throttleCounted: boolean;
    }
  | { ok: false; account: UserRow | null; error: AppError };

interface StepInput {
  password: string;
  meta: RequestMeta;
  /** Runs when this failure locks the account, with the owner's address and saved language (never for an unknown email). */
  onLocked?: ((ownerEmail: string, until: Date, ownerLocale: string | null) => void) | undefined;
}

/** A sign-in (or register-existing, or direct sign-in) password: the account is looked up after the gate. */
export interface SignInPassword extends StepInput {
  email: string;
}

/**
 * A signed-in user's current password, typed again (password or email change, deletion, turning two-step verification
 * off): a password guess by whoever holds the session, so counted and throttled like a sign-in, or a stolen session
 * could guess without limit. The lock holds even with a second factor (no code step follows), and a right password
 * does not clear the counter (only a sign-in or a reset does). A wrong one is audited and names `field`.
 */
export interface PasswordAgain extends StepInput {
  user: UserRow;
  field: string;
}

export function passwordStep(ctx: CoreContext, input: SignInPassword | PasswordAgain): Promise<PasswordStep> {
  const email = "user" in input ? input.user.email : input.email;
  return oneAtATime(accountKey(ctx.config, email), () => passwordStepInLine(ctx, email, input));
}

async function passwordStepInLine(
  ctx: CoreContext,
  email: string,
  input: SignInPassword | PasswordAgain,
): Promise<PasswordStep> {
  const again = "user" in input ? input : null;
  // The account (and whether it has a second factor) is read in the same round trip as the gate's reads; nothing
  // uses it unless the gate lets the attempt through.
  const lookup = again ? null : findUserByEmailForSignIn(ctx.db, normalizeEmail(email));
  lookup?.catch(() => {}); // the gate may throw first: its failure is then not left unhandled
  // gate
  const gate = await checkSignIn(ctx, input.meta, { email, userId: again?.user.id });
  // verify
  const found = again ? { user: again.user, hasSecondFactor: false } : await lookup;
  const account = found?.user ?? null;
  if (account?.passwordHash) {
    const verified = await verifyPassword(ctx.config.passwords, account.passwordHash, input.password);
    if (verified.ok) {
      if (verified.needsRehash && !again) {
        const upgraded = await hashPassword(ctx.config.passwords, input.password);
        await replacePasswordHash(ctx.db, account.id, account.passwordHash, upgraded);
      }
      // A passkey is a second factor too (libraries/passkeys): the code step then offers it. Read with the account.
      const hasSecondFactor = !again && found?.hasSecondFactor === true;
      // lock
      const blocked = accountLockBlocks(gate, { passwordOk: true, hasSecondFactor });
      return blocked
        ? { ok: false, account, error: blocked }
        : { ok: true, user: account, hasSecondFactor, throttleCounted: gate.counted };
    }
  } else {
    // No account (or one without a password) costs the same argon2 work as a wrong password.
    await verifyAgainstDummy(ctx.config.passwords, input.password);
  }
  // count
  if (again) {
    await audit(ctx.db, input.meta, {
      event: "user.password_check_failed",
      outcome: "failure",
      userId: again.user.id,
      details: { field: again.field },
    });
  }
  const counted = await recordSignInFailure(ctx, input.meta, {
    email,
    userId: account?.id ?? null,
    reason: "password",
    onLocked: async (until) => {
      if (account) input.onLocked?.(account.email, until, account.locale);
    },
  });
  // lock: the failure that locks the account already answers ACCOUNT_LOCKED.
  const error =
    (counted.accountLockedUntil && accountLockedError(counted.accountLockedUntil, ctx.clock.now())) ??
    accountLockBlocks(gate, { passwordOk: false, hasSecondFactor: false }) ??
    (again
      ? new AppError("INVALID_CREDENTIALS", "Your current password is not correct.", [
          { field: again.field, message: "Your current password is not correct." },
        ])
      : new AppError("INVALID_CREDENTIALS"));
  return { ok: false, account, error };
}

/** `passwordStep` for a password typed again: returns when it is right, throws the answer otherwise. */
export async function checkPasswordAgain(ctx: CoreContext, input: PasswordAgain): Promise<void> {
  const step = await passwordStep(ctx, input);
  if (!step.ok) throw step.error;
}

/**
 * The `onLocked` that emails the account's owner that sign-ins are paused (in the background), in the owner's saved
 * language, else the language of the request that locked it. A caller that does not know the owner's language (the
 * second-factor step) leaves it undefined: it is looked up, in the background too.
 */
export function emailOwnerOnLock(ctx: Pick<AppContext, "config" | "mailer" | "db">, log: Logger, meta?: RequestMeta) {
  const send = (ownerEmail: string, until: Date, ownerLocale: string | null | undefined) =>
    sendInBackground(
      ctx.mailer,
      accountEmail(ctx.config, {
        kind: "account_locked",
        to: ownerEmail,
        until,
        locale: ownerLocale,
        requestLocale: meta?.locale,
      }),
      log,
    );
  return (ownerEmail: string, until: Date, ownerLocale?: string | null): void => {
    if (ownerLocale !== undefined) {
      send(ownerEmail, until, ownerLocale);
      return;
    }
    findUserByEmail(ctx.db, ownerEmail).then(
      (owner) => send(ownerEmail, until, owner?.locale),
      () => send(ownerEmail, until, null),
    );
  };
}
