import type { AppContext } from "../../context.ts";
import { OAuthError } from "../../errors/index.ts";
import { insertAuthorizationCode } from "../../queries/codes.ts";
import { passkeyExists } from "../../queries/passkeys.ts";
import { termsAcceptanceNeeded } from "../accounts/terms.ts";
import { addSeconds } from "../clock.ts";
import { randomToken, sha256 } from "../crypto.ts";
import { hasConfirmedTotp } from "../mfa/factor.ts";
import type { SessionRow, UserRow } from "../sessions.ts";
import { isMultiFactor } from "./acr.ts";
import { type AuthorizationRequest, redirectError, withParams } from "./authorize-request.ts";
import { hasConsent, rememberConsent } from "./consent.ts";

export type AuthorizeDecision =
  /** A code (or an error) for the client. */
  | { kind: "redirect"; location: string }
  /** The user must sign in (again) on Tessera's hosted page first; `location` is /login with return_to. */
  | { kind: "login"; location: string }
  /** A third-party client: the user approves or denies on the consent page, which posts back to /authorize/consent. */
  | { kind: "consent"; request: AuthorizationRequest; user: UserRow }
  /** A newer TERMS_VERSION/PRIVACY_VERSION than the user accepted: the interstitial, which posts to /authorize/terms. */
  | { kind: "terms"; request: AuthorizationRequest; user: UserRow };

/**
 * Decides what happens for a validated request and the browser's current session: sign in first, ask for consent,
 * or issue a code at once (silent sign-on across apps).
 */
export async function decide(
  ctx: AppContext,
  request: AuthorizationRequest,
  current: { session: SessionRow; user: UserRow } | null,
  options: { consented?: boolean; termsAccepted?: boolean } = {},
): Promise<AuthorizeDecision> {
  const now = ctx.clock.now();
  const fail = (error: OAuthError) => redirectError(ctx, request.redirectUri, request.state, error);
  // checkSession: a session of another user than the hint names does not count (the client wants that user).
  const session = current && (!request.hintSubject || current.user.id === request.hintSubject) ? current : null;
  // max_age=0 demands a sign-in now, even one made within the same second (OIDC Core 3.1.2.1 treats it like
  // prompt=login); otherwise the sign-in may be at most max_age seconds old.
  const tooOld =
    session !== null &&
    request.maxAgeSeconds !== undefined &&
    (request.maxAgeSeconds === 0 ||
      Math.floor(now.getTime() / 1000) - Math.floor(session.session.authenticatedAt.getTime() / 1000) >
        request.maxAgeSeconds);
  const freshLoginDemanded = request.prompt.has("login") || tooOld;
  if (!session || freshLoginDemanded) {
    if (request.prompt.has("none")) throw fail(new OAuthError("login_required", "The user is not signed in."));
    return { kind: "login", location: loginLocation(request, freshLoginDemanded) };
  }

  // checkAuthenticationStrength: a client whose acr_values demand a second factor gets a fresh sign-in (password and
  // code) when the session was made without one; a user with no second factor cannot satisfy it, so the client is told.
  if (request.requireSecondFactor && !isMultiFactor(session.session.amr)) {
    if (request.prompt.has("none")) {
      throw fail(new OAuthError("interaction_required", "This application requires a sign-in with a second factor."));
    }
    if (!(await hasConfirmedTotp(ctx.db, session.user.id)) && !(await passkeyExists(ctx.db, session.user.id))) {
      throw fail(
        new OAuthError(
          "access_denied",
          "This application requires two-step verification, which is not turned on for this account.",
        ).withCode("SECOND_FACTOR_NOT_ENROLLED"),
      );
    }
    return { kind: "login", location: loginLocation(request, true) };
  }

  // checkTerms (#16): a newer terms or privacy version than the user accepted is accepted before any app gets a code,
  // whichever way the user signed in (password, passkey, upstream) or when the session signs in silently.
  if (!options.termsAccepted && (await termsAcceptanceNeeded(ctx.db, ctx.config, session.user.id))) {
    if (request.prompt.has("none")) {
      throw fail(new OAuthError("interaction_required", "The user must accept the updated terms first."));
    }
    return { kind: "terms", request, user: session.user };
  }

  // checkConsent: prompt=consent always asks; otherwise first-party clients are trusted, and a third-party one asks
  // unless the user already approved these scopes for it (remembered consent). An approval just given is remembered.
  if (options.consented) {
    await rememberConsent(ctx, session.user.id, request.client, request.scopes);
  } else if (
    request.prompt.has("consent") ||
    (!request.client.firstParty && !(await hasConsent(ctx, session.user.id, request.client, request.scopes)))
  ) {
    if (request.prompt.has("none")) {
      throw fail(new OAuthError("consent_required", "The user must approve this application."));
    }
    return { kind: "consent", request, user: session.user };
  }

  const code = await issueCode(ctx, request, session.session, now);
  return {
    kind: "redirect",
    location: withParams(request.redirectUri, { code, state: request.state, iss: ctx.config.issuer }),
  };
}

/**
 * The hosted sign-in page, returning to this same request. When a fresh sign-in is demanded (prompt=login or an
 * exceeded max_age), the returning request drops `login` from prompt and drops max_age: the user has just signed in,
 * and keeping them would send the browser back to the sign-in page forever.
 */
function loginLocation(request: AuthorizationRequest, fresh: boolean): string {
  const params = { ...request.params };
  if (fresh) {
    delete params.max_age;
    const prompt = (params.prompt ?? "")
      .split(" ")
      .filter((v) => v && v !== "login")
      .join(" ");
    if (prompt) params.prompt = prompt;
    else delete params.prompt;
  }
  const returnTo = `/authorize?${new URLSearchParams(params).toString()}`;
  const login = new URLSearchParams({ return_to: returnTo, client_id: request.client.clientId });
  if (fresh) login.set("prompt", "login");
  // login_hint pre-fills the email field (only when it looks like one; the page escapes it like any value).
  const hint = request.params.login_hint;
  if (hint && hint.length <= 254 && /^[^\s@]+@[^\s@]+$/.test(hint)) login.set("login_hint", hint);
  return `/login?${login.toString()}`;
}

/** 256-bit code, only its SHA-256 stored, single use, alive `tokens.authorizationCodeTtlSeconds` (≤ 60 s). */
async function issueCode(
  ctx: AppContext,
  request: AuthorizationRequest,
  session: SessionRow,
  now: Date,
): Promise<string> {
  const code = randomToken();
  await insertAuthorizationCode(ctx.db, {
    codeHash: sha256(code),
    clientId: request.client.id,
    userId: session.userId,
    sessionId: session.id,
    redirectUri: request.redirectUri,
    codeChallenge: request.codeChallenge,
    codeChallengeMethod: "S256",
    scope: request.scopes.join(" "),
    nonce: request.nonce ?? null,
    authTime: session.authenticatedAt,
    amr: session.amr,
    createdAt: now,
    expiresAt: addSeconds(now, ctx.config.tokens.authorizationCodeTtlSeconds),
  });
  return code;
}

/** The error redirect for a user who denied consent. */
export function accessDenied(ctx: AppContext, request: AuthorizationRequest): string {
  return redirectError(
    ctx,
    request.redirectUri,
    request.state,
    new OAuthError("access_denied", "The user denied the request.").withCode("CONSENT_DENIED"),
  ).location;
}

/** The error redirect for a user who declined updated terms (#16). */
export function termsDeclined(ctx: AppContext, request: AuthorizationRequest): string {
  return redirectError(
    ctx,
    request.redirectUri,
    request.state,
    new OAuthError("access_denied", "The user declined the updated terms."),
  ).location;
}
