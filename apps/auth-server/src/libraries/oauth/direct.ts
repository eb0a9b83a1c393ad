import type { AppContext } from "../../context.ts";
import { AppError, OAuthError } from "../../errors/index.ts";
import { passwordSignIn } from "../accounts/sign-in.ts";
import {
  currentDocuments,
  explicitAcceptance,
  recordTermsAcceptance,
  termsAcceptanceNeeded,
} from "../accounts/terms.ts";
import { audit, type RequestMeta } from "../audit.ts";
import type { ClientRow } from "../clients/index.ts";
import { countSignIn } from "../metrics.ts";
import { signIn } from "../sessions.ts";
import { clearAccountThrottle } from "../throttle/failures.ts";
import { checkScope } from "./scopes.ts";
import { createRefreshToken, type Grant, type TokenResponse, tokenResponse } from "./tokens.ts";

/**
 * Server-to-server sign-in for trusted first-party clients (a game with its own login screen): the client sends the
 * user's email and password with its own credentials and gets the same token response as /token, in a new Tessera
 * session. Off unless the client has `direct_sign_in_enabled`. The same checks as the hosted form apply (argon2 work
 * for unknown emails, disabled accounts, unverified email policy), failures and successes are audited the same way,
 * and an account with a second factor must use the hosted pages (a password alone is not enough for it).
 *
 * Terms (#16): a user who has not accepted the configured terms/privacy versions gets no tokens. After the password
 * is checked (so the answer reveals nothing about an account to someone without its password), the client is told
 * TERMS_ACCEPTANCE_REQUIRED with the documents to show; it retries with `accept_terms_version` /
 * `accept_privacy_version` naming the current versions, which records the acceptance (a `terms_acceptances` row,
 * context sign_in, as the /authorize interstitial does) in the transaction that starts the session.
 */
export async function directSignIn(
  ctx: AppContext,
  client: ClientRow,
  input: {
    username: string | undefined;
    password: string | undefined;
    scope: string | undefined;
    acceptTermsVersion?: string | undefined;
    acceptPrivacyVersion?: string | undefined;
  },
  meta: RequestMeta,
): Promise<TokenResponse> {
  // checkClientAllowed → checkParams → checkScope → passwordSignIn → checkTerms → startSession
  if (!client.directSignInEnabled) {
    throw new OAuthError("unauthorized_client", "Direct sign-in is not enabled for this client.");
  }
  if (!input.username) throw new OAuthError("invalid_request", "The username parameter is required.");
  if (!input.password) throw new OAuthError("invalid_request", "The password parameter is required.");
  const scopes = checkScope(client, input.scope ?? "openid");

  // The hosted form's password step, throttling included (per IP and per account, counted before the answer); a
  // password alone is not enough for an account with a second factor.
  const { user, throttleCounted } = await passwordSignIn(ctx, {
    email: input.username,
    password: input.password,
    meta,
    clientId: client.clientId,
    refuseSecondFactor: true,
  }).catch((error: unknown) => {
    throw error instanceof AppError ? signInFailure(error) : error;
  });
  if (throttleCounted) await clearAccountThrottle(ctx, user.email);
  const signedIn = user;
  const acceptsTerms = await checkTerms(ctx, signedIn.id, {
    terms: input.acceptTermsVersion,
    privacy: input.acceptPrivacyVersion,
  });

  const now = ctx.clock.now();
  const { grant, refreshToken } = await ctx.db.transaction(async (tx) => {
    const { session } = await signIn(ctx, tx, { userId: signedIn.id, amr: ["pwd"], meta });
    if (acceptsTerms) {
      await recordTermsAcceptance(tx, ctx.config, { userId: signedIn.id, context: "sign_in", now });
    }
    await audit(tx, meta, {
      event: "user.signed_in",
      outcome: "success",
      userId: signedIn.id,
      sessionId: session.id,
      clientId: client.clientId,
      details: {
        via: "direct",
        amr: ["pwd"],
        ...(acceptsTerms ? { termsAccepted: currentDocuments(ctx.config).map((d) => `${d.kind}@${d.version}`) } : {}),
      },
    });
    const grant: Grant = { client, user: signedIn, session, scopes };
    const { token } = await createRefreshToken(tx, { grant, now });
    return { grant, refreshToken: token };
  });
  countSignIn(["pwd"]); // after the commit
  return tokenResponse(ctx, grant, refreshToken);
}

/**
 * True when the user must accept now and the client sent the current versions (record them); nothing when no
 * acceptance is needed; TERMS_ACCEPTANCE_REQUIRED (invalid_grant) with `required_documents` when one is needed and
 * not given, or when the client names a version that is not the current one (the user saw an outdated text).
 */
async function checkTerms(
  ctx: AppContext,
  userId: string,
  sent: { terms: string | undefined; privacy: string | undefined },
): Promise<boolean> {
  const given = explicitAcceptance(ctx.config, sent);
  if (given !== "stale" && !(await termsAcceptanceNeeded(ctx.db, ctx.config, userId))) return false;
  if (given === "current") return true;
  throw new OAuthError(
    "invalid_grant",
    given === "stale"
      ? "The accepted version is not the current one; show the current documents and ask again."
      : "The user must accept the current terms of service and privacy notice first.",
  )
    .withCode("TERMS_ACCEPTANCE_REQUIRED")
    .withExtensions({ required_documents: currentDocuments(ctx.config) });
}

/**
 * The OAuth answer for a failed sign-in: throttling is 429 slow_down with Retry-After, everything else invalid_grant.
 * A game's own login screen must tell these apart (wait, go to the hosted page, contact support), so each carries its
 * catalog code as `tessera_code`; a wrong password and an unknown email stay one answer with no code (no enumeration).
 */
function signInFailure(error: AppError): OAuthError {
  switch (error.code) {
    case "IP_SUSPENDED":
    case "LOGIN_THROTTLED":
    case "ACCOUNT_LOCKED":
      return new OAuthError("slow_down", error.message, 429, error.headers ?? {}).withCode(error.code);
    case "ACCOUNT_DISABLED":
    case "EMAIL_NOT_VERIFIED":
      return new OAuthError("invalid_grant", error.message).withCode(error.code);
    case "MFA_REQUIRED":
      return new OAuthError(
        "invalid_grant",
        "This account uses a second factor; sign in through Tessera's sign-in page.",
      ).withCode("MFA_REQUIRED");
    default:
      return new OAuthError("invalid_grant", "The email or password is incorrect.");
  }
}
