import type { AppContext, Logger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { findUserByEmail, insertUser, type UserRow } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { issueEmailToken } from "../email-tokens.ts";
import { sendInBackground } from "../mailer/index.ts";
import { accountEmail } from "../mailer/messages.ts";
import { emailOwnerOnLock, type PasswordStep, passwordStep } from "../password-step.ts";
import { hashPassword, passwordProblems, verifyAgainstDummy } from "../passwords.ts";
import type { SessionRow } from "../sessions.ts";
import { clearAccountThrottle } from "../throttle/failures.ts";
import { responseFloor } from "./response-floor.ts";
import type { Continuation } from "./return-to.ts";
import { checkCanSignIn, type SignedIn, startSession } from "./sign-in.ts";
import { recordTermsAcceptance, requireTermsAccepted } from "./terms.ts";

// Registration

export type RegisterResult = { outcome: "signed_in"; signedIn: SignedIn } | { outcome: "check_email" };

/**
 * Registers an account. For an email that already has one: the right password simply signs the user in; anything
 * else answers exactly like a fresh registration ("check your email") and the owner of the address is told that
 * someone tried to register with it. Both paths spend one argon2 computation and send one email (in the background),
 * so neither the answer nor its timing tells whether the email is registered.
 */
export async function register(ctx: AppContext, log: Logger, input: RegisterInput): Promise<RegisterResult> {
  const problems = passwordProblems(ctx.config.passwords, input.password, "password", [
    input.email,
    input.email.split("@")[0],
    input.displayName,
  ]);
  if (problems.length) throw new AppError("WEAK_PASSWORD", problems[0]?.message, problems);
  requireTermsAccepted(ctx.config, input.acceptTerms);
  const floor = responseFloor(ctx);
  try {
    return await registerChecked(ctx, log, input);
  } finally {
    await floor();
  }
}

export interface RegisterInput {
  email: string;
  password: string;
  displayName?: string | null | undefined;
  meta: RequestMeta;
  existing?: SessionRow | null;
  continuation?: Continuation;
  /** The terms/privacy box on the register page (#16); required when TERMS_/PRIVACY_VERSION are configured. */
  acceptTerms?: boolean | undefined;
}

/**
 * The work after the policy check. A new account costs more writes than a taken email, so `register` pads both to
 * `responseFloorMs` (wall time): the response time does not tell them apart.
 */
async function registerChecked(ctx: AppContext, log: Logger, input: RegisterInput): Promise<RegisterResult> {
  const found = await findUserByEmail(ctx.db, input.email);
  if (found) return registerExisting(ctx, log, found, input);

  const passwordHash = await hashPassword(ctx.config.passwords, input.password);
  const now = ctx.clock.now();
  const created = await ctx.db.transaction(async (tx) => {
    const user = await insertUser(tx, {
      email: input.email,
      passwordHash,
      displayName: input.displayName ?? null,
      now,
    });
    if (!user) return null;
    await recordTermsAcceptance(tx, ctx.config, { userId: user.id, context: "register", now });
    const token = await issueEmailToken(tx, {
      userId: user.id,
      purpose: "verify_email",
      ttlSeconds: ctx.config.tokens.emailVerificationTtlSeconds,
      now,
    });
    await audit(tx, input.meta, {
      event: "user.registered",
      outcome: "success",
      userId: user.id,
      clientId: input.continuation?.clientId ?? null,
    });
    return { user, token };
  });
  if (!created) {
    // Lost a race with a concurrent registration of the same address: answer exactly as for an existing email.
    const winner = await findUserByEmail(ctx.db, input.email);
    if (winner) notifyRegistrationAttempt(ctx, log, winner, input.meta);
    return { outcome: "check_email" };
  }
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "verify_email",
      to: created.user.email,
      token: created.token,
      continuation: input.continuation,
      locale: created.user.locale,
      requestLocale: input.meta.locale,
    }),
    log,
  );
  return { outcome: "check_email" };
}

async function registerExisting(
  ctx: AppContext,
  log: Logger,
  user: UserRow,
  input: { password: string; meta: RequestMeta; existing?: SessionRow | null; continuation?: Continuation },
): Promise<RegisterResult> {
  // The right password signs in here, so this is a password check like sign-in: throttled and counted, and it never
  // skips a second factor or a lock. Those cases answer like any taken email ("check your email"), after the same
  // argon2 work.
  let step: PasswordStep | null = null;
  try {
    step = await passwordStep(ctx, {
      email: user.email,
      password: input.password,
      meta: input.meta,
      onLocked: emailOwnerOnLock(ctx, log, input.meta),
    });
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    await verifyAgainstDummy(ctx.config.passwords, input.password);
  }
  if (step?.ok && !step.hasSecondFactor && !user.disabledAt) {
    checkCanSignIn(ctx, user);
    await clearAccountThrottle(ctx, user.email);
    const signedIn = await startSession(ctx, {
      user,
      amr: ["pwd"],
      meta: input.meta,
      existing: input.existing,
      clientId: input.continuation?.clientId,
    });
    return { outcome: "signed_in", signedIn };
  }
  await audit(ctx.db, input.meta, {
    event: "user.registered",
    outcome: "failure",
    userId: user.id,
    details: { reason: "email_taken" },
  });
  notifyRegistrationAttempt(ctx, log, user, input.meta);
  return { outcome: "check_email" };
}

function notifyRegistrationAttempt(ctx: AppContext, log: Logger, user: UserRow, meta: RequestMeta): void {
  sendInBackground(
    ctx.mailer,
    accountEmail(ctx.config, {
      kind: "registration_attempt",
      to: user.email,
      locale: user.locale,
      requestLocale: meta.locale,
    }),
    log,
  );
}
