import type { AppContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  consumeFlow,
  findIdentity,
  findIdentityProviderById,
  findLiveFlow,
  type IdentityProviderRow,
  insertFederatedUser,
  insertFlow,
  insertIdentity,
  touchIdentity,
} from "../../queries/federation.ts";
import { findUserByEmail, findUserById, type UserRow } from "../../queries/users.ts";
import type { Continuation } from "../accounts/return-to.ts";
import { passwordSignIn, type SignedIn, startSession } from "../accounts/sign-in.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { addSeconds } from "../clock.ts";
import { randomToken, sha256 } from "../crypto.ts";
import { countSignInFailure } from "../metrics.ts";
import { createMfaChallenge } from "../mfa/challenge.ts";
import { hasConfirmedTotp } from "../mfa/factor.ts";
import type { SessionRow } from "../sessions.ts";
import { normalizeEmail } from "../throttle/keys.ts";
import type { UpstreamResult } from "./upstream.ts";

/**
 * What a verified upstream identity leads to:
 *
 *   linked already      → that account signs in (amr fed + the provider's slug; the code step first when it has one)
 *   started to link     → (from the account page, same account's session) the identity is linked
 *   unknown, email free → a new account (email verified only when the provider is trusted for email and says so)
 *   unknown, email used → NOTHING is linked: a pending link waits for the owner to prove the existing account
 */
export type FederatedOutcome =
  | { kind: "signed_in"; signedIn: SignedIn }
  | { kind: "second_factor"; secondFactor: { token: string; expiresAt: Date } }
  | { kind: "pending_link"; cookie: string; expiresAt: Date }
  | { kind: "linked" };

const PENDING_LINK_TTL_SECONDS = 900;

interface Input {
  meta: RequestMeta;
  existing: SessionRow | null;
}

export async function completeFederatedSignIn(
  ctx: AppContext,
  provider: IdentityProviderRow,
  result: UpstreamResult,
  input: Input,
): Promise<FederatedOutcome> {
  const { profile } = result;
  const now = ctx.clock.now();
  const identity = await findIdentity(ctx.db, provider.id, profile.subject);
  const amr = ["fed", provider.slug];

  if (result.linkToUserId) {
    // The flow was started by this account's session; the browser must still hold it.
    if (input.existing?.userId !== result.linkToUserId) throw new AppError("FEDERATION_STATE_INVALID");
    if (identity && identity.userId !== result.linkToUserId) throw new AppError("IDENTITY_IN_USE");
    if (!identity) await link(ctx, provider, result.linkToUserId, profile, input.meta, "account_page");
    return { kind: "linked" };
  }

  if (identity) {
    const user = await findUserById(ctx.db, identity.userId);
    if (!user) throw new AppError("FEDERATION_STATE_INVALID");
    if (user.disabledAt) throw new AppError("ACCOUNT_DISABLED");
    await touchIdentity(ctx.db, identity.id, now, profile.email);
    return signInOrSecondFactor(ctx, user, provider, amr, input, result.continuation);
  }

  const email = profile.email ? normalizeEmail(profile.email) : null;
  const owner = email ? await findUserByEmail(ctx.db, email) : null;
  if (owner) {
    // Never linked by email alone: the owner proves the account first (confirmPendingLink).
    const cookie = randomToken();
    const expiresAt = addSeconds(now, PENDING_LINK_TTL_SECONDS);
    await insertFlow(ctx.db, {
      tokenHash: sha256(cookie),
      purpose: "pending_link",
      providerId: provider.id,
      userId: owner.id,
      data: { profile, returnTo: result.continuation.returnTo, clientId: result.continuation.clientId },
      createdAt: now,
      expiresAt,
    });
    await audit(ctx.db, input.meta, {
      event: "user.identity_link_pending",
      outcome: "success",
      userId: owner.id,
      details: { provider: provider.slug },
    });
    return { kind: "pending_link", cookie, expiresAt };
  }

  const verified = provider.trustedForEmail && profile.emailVerified && email !== null;
  const user = await ctx.db.transaction(async (tx) => {
    const created = await insertFederatedUser(tx, {
      // Steam, and GitHub without a public address, give no email: a placeholder in the reserved .invalid domain
      // keeps the column's uniqueness; the owner can change it on the account page.
      email: email ?? `${provider.slug}.${profile.subject.toLowerCase()}@federated.invalid`,
      emailVerifiedAt: verified ? now : null,
      displayName: profile.name?.slice(0, 100) ?? null,
      now,
    });
    if (!created) throw new AppError("CONFLICT");
    const linked = await insertIdentity(tx, {
      userId: created.id,
      providerId: provider.id,
      subject: profile.subject,
      email: profile.email,
      displayName: profile.name,
      linkedAt: now,
      lastSignInAt: now,
    });
    if (!linked) throw new AppError("CONFLICT");
    await audit(tx, input.meta, {
      event: "user.registered",
      outcome: "success",
      userId: created.id,
      clientId: result.continuation.clientId ?? null,
      details: { via: "federation", provider: provider.slug, emailVerified: verified },
    });
    return created;
  });
  return signInOrSecondFactor(ctx, user, provider, amr, input, result.continuation);
}

/** What the pending-link page shows: the provider and the account's address (the browser already told us both). */
export async function pendingLink(ctx: AppContext, cookie: string | undefined) {
  if (!cookie || cookie.length > 200) return null;
  const flow = await findLiveFlow(ctx.db, sha256(cookie), "pending_link", ctx.clock.now());
  if (!flow?.userId) return null;
  const [provider, user] = await Promise.all([
    findIdentityProviderById(ctx.db, flow.providerId),
    findUserById(ctx.db, flow.userId),
  ]);
  if (!provider || !user || provider.disabledAt) return null;
  const data = flow.data as { profile: UpstreamResult["profile"]; returnTo?: string; clientId?: string };
  return {
    flow,
    provider,
    user,
    profile: data.profile,
    continuation: { returnTo: data.returnTo, clientId: data.clientId } as Continuation,
  };
}

/**
 * The owner proves the existing account with its password (throttled and counted like the sign-in form); only then is
 * the pending identity linked, and the account signs in (the code step first when it has a second factor).
 */
export async function confirmPendingLink(
  ctx: AppContext,
  input: Input & { cookie: string | undefined; password: string },
): Promise<{ outcome: Exclude<FederatedOutcome, { kind: "pending_link" | "linked" }>; continuation: Continuation }> {
  const pending = await pendingLink(ctx, input.cookie);
  if (!pending) throw new AppError("FEDERATION_STATE_INVALID");
  const { user } = await passwordSignIn(ctx, { email: pending.user.email, password: input.password, meta: input.meta });
  if (user.id !== pending.user.id) throw new AppError("FEDERATION_STATE_INVALID");
  if (!(await consumeFlow(ctx.db, pending.flow.tokenHash, "pending_link", ctx.clock.now()))) {
    throw new AppError("FEDERATION_STATE_INVALID");
  }
  await link(ctx, pending.provider, user.id, pending.profile, input.meta, "password");
  const outcome = await signInOrSecondFactor(
    ctx,
    user,
    pending.provider,
    ["pwd", "fed", pending.provider.slug],
    input,
    pending.continuation,
  );
  return { outcome, continuation: pending.continuation };
}

export async function link(
  ctx: AppContext,
  provider: IdentityProviderRow,
  userId: string,
  profile: UpstreamResult["profile"],
  meta: RequestMeta,
  proof: string,
): Promise<void> {
  const now = ctx.clock.now();
  await ctx.db.transaction(async (tx) => {
    const linked = await insertIdentity(tx, {
      userId,
      providerId: provider.id,
      subject: profile.subject,
      email: profile.email,
      displayName: profile.name,
      linkedAt: now,
      lastSignInAt: now,
    });
    if (!linked) throw new AppError("IDENTITY_IN_USE");
    await audit(tx, meta, {
      event: "user.identity_linked",
      outcome: "success",
      userId,
      details: { provider: provider.slug, proof },
    });
  });
}

export async function signInOrSecondFactor(
  ctx: AppContext,
  user: UserRow,
  provider: IdentityProviderRow,
  amr: string[],
  input: Input,
  continuation: Continuation,
): Promise<Exclude<FederatedOutcome, { kind: "pending_link" | "linked" }>> {
  if (await hasConfirmedTotp(ctx.db, user.id)) {
    // The same code step as after a password; the flow remembers the first factor so the session's amr is honest.
    const secondFactor = await createMfaChallenge(ctx, ctx.db, user.id);
    await insertFlow(ctx.db, {
      tokenHash: sha256(secondFactor.token),
      purpose: "mfa",
      providerId: provider.id,
      userId: user.id,
      data: { amr },
      createdAt: ctx.clock.now(),
      expiresAt: secondFactor.expiresAt,
    });
    await audit(ctx.db, input.meta, {
      event: "user.second_factor_required",
      outcome: "success",
      userId: user.id,
      clientId: continuation.clientId ?? null,
    });
    return { kind: "second_factor", secondFactor };
  }
  const signedIn = await startSession(ctx, {
    user,
    amr,
    meta: input.meta,
    existing: input.existing,
    ...(continuation.clientId ? { clientId: continuation.clientId } : {}),
  });
  return { kind: "signed_in", signedIn };
}

/**
 * The first factor of a federated sign-in waiting at the code step (`["fed", slug]`), or null for a password one.
 * Read, not spent: the code step may be retried within the challenge's life.
 */
export async function federatedFirstFactor(ctx: AppContext, challengeToken: string | undefined) {
  if (!challengeToken || challengeToken.length > 200) return null;
  const flow = await findLiveFlow(ctx.db, sha256(challengeToken), "mfa", ctx.clock.now());
  const amr = (flow?.data as { amr?: unknown } | undefined)?.amr;
  return Array.isArray(amr) && amr.every((v) => typeof v === "string") ? (amr as string[]) : null;
}

/** A refused upstream answer (state, verification, denial, a taken identity): audited with its code, nothing else. */
export async function auditFederationFailure(ctx: AppContext, meta: RequestMeta, provider: string, error: AppError) {
  await audit(ctx.db, meta, {
    event: "user.federated_sign_in_failed",
    outcome: "failure",
    details: { provider, reason: error.code },
  });
  countSignInFailure("federation", error.code);
}
