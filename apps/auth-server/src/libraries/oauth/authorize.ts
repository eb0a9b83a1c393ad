import type { AppContext } from "../../context.ts";
import { insertAuthorizationCode } from "../../queries/codes.ts";
import { type ClientRow, findActiveClient } from "../clients/index.ts";
import { addSeconds } from "../clock.ts";
import { randomToken, sha256 } from "../crypto.ts";
import { verifyJwt } from "../keys.ts";
import type { SessionRow, UserRow } from "../sessions.ts";
import { acrValuesDemandSecondFactor, hasConfirmedTotp } from "../totp.ts";
import { OAuthError, OAuthPageError } from "./errors.ts";
import { type Params, readParams } from "./params.ts";
import { S256_CHALLENGE } from "./pkce.ts";
import { checkScope } from "./scopes.ts";

/** Parameters /authorize reads, with their maximum lengths; anything else is ignored (OIDC Core 3.1.2.1). */
export const AUTHORIZE_PARAMS = {
  response_type: 64,
  response_mode: 32,
  scope: 1024,
  state: 1024,
  nonce: 512,
  code_challenge: 128,
  code_challenge_method: 32,
  prompt: 128,
  max_age: 16,
  login_hint: 320,
  id_token_hint: 8192,
  ui_locales: 128,
  display: 32,
  acr_values: 512,
} as const;

/** client_id and redirect_uri come first: until both are valid, nothing may redirect (RFC 6749 4.1.2.1). */
const TARGET_PARAMS = { client_id: 128, redirect_uri: 2000 } as const;

const PROMPTS = new Set(["none", "login", "consent", "select_account"]);

/** A validated authorization request, ready for the session and consent decisions. */
export interface AuthorizationRequest {
  client: ClientRow;
  redirectUri: string;
  state: string | undefined;
  scopes: string[];
  nonce: string | undefined;
  codeChallenge: string;
  prompt: Set<string>;
  maxAgeSeconds: number | undefined;
  /** The `sub` of a valid id_token_hint: the user the client expects to be signed in. */
  hintSubject: string | undefined;
  /** `acr_values` accept only a sign-in with a second factor. */
  requireSecondFactor: boolean;
  /** Every recognized parameter as sent, to rebuild the request (login return_to, consent form). */
  params: Record<string, string>;
}

/**
 * An error that goes back to the client's (validated) redirect URI, with `state` and `iss` (RFC 9207), and `tessera_code`
 * beside `error` when the outcome needs telling apart (tesseraOAuthCodes).
 */
export class AuthorizeRedirectError extends Error {
  override name = "AuthorizeRedirectError";
  constructor(
    readonly location: string,
    readonly oauthError: OAuthError,
  ) {
    super(oauthError.description);
  }
}

export type AuthorizeDecision =
  /** A code (or an error) for the client. */
  | { kind: "redirect"; location: string }
  /** The user must sign in (again) on Tessera's hosted page first; `location` is /login with return_to. */
  | { kind: "login"; location: string }
  /** A third-party client: the user approves or denies on the consent page, which posts back to /authorize/consent. */
  | { kind: "consent"; request: AuthorizationRequest; user: UserRow };

/** Appends parameters to a registered redirect URI, keeping any query it already has. */
export function withParams(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return url.toString();
}

function redirectError(ctx: AppContext, redirectUri: string, state: string | undefined, error: OAuthError) {
  return new AuthorizeRedirectError(
    withParams(redirectUri, {
      error: error.error,
      error_description: error.description,
      tessera_code: error.tesseraCode,
      state,
      iss: ctx.config.issuer,
    }),
    error,
  );
}

/**
 * Validates an authorization request as an ordered list of checks. The first two (checkClient, checkRedirectUri)
 * throw OAuthPageError: an error page, never a redirect to an unverified URI. Every later check throws
 * AuthorizeRedirectError, which the route answers with a redirect to the client.
 */
export async function validateAuthorizationRequest(ctx: AppContext, input: unknown): Promise<AuthorizationRequest> {
  const target = readParams(input, TARGET_PARAMS, (d) => new OAuthPageError("invalid_request", d));
  const client = await checkClient(ctx, target.client_id);
  const redirectUri = checkRedirectUri(client, target.redirect_uri);

  // From here on, errors go to the client. A duplicated state cannot be echoed: send none rather than guess.
  const rawState = (input as Record<string, unknown> | null)?.state;
  const safeState =
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a state with control characters is not echoed.
    typeof rawState === "string" && rawState.length <= AUTHORIZE_PARAMS.state && !/[\x00-\x1f\x7f]/.test(rawState)
      ? rawState
      : undefined;
  try {
    const p = readParams(input, AUTHORIZE_PARAMS);
    checkResponseType(p);
    checkResponseMode(p);
    const scopes = checkScope(client, p.scope);
    const codeChallenge = checkPkce(p);
    const prompt = checkPrompt(p);
    const maxAgeSeconds = checkMaxAge(p);
    const hintSubject = await checkIdTokenHint(ctx, p);
    const params: Record<string, string> = { client_id: client.clientId, redirect_uri: redirectUri };
    for (const [k, v] of Object.entries(p)) if (v !== undefined) params[k] = v;
    return {
      client,
      redirectUri,
      state: p.state,
      scopes,
      nonce: p.nonce,
      codeChallenge,
      prompt,
      maxAgeSeconds,
      hintSubject,
      requireSecondFactor: acrValuesDemandSecondFactor(p.acr_values),
      params,
    };
  } catch (error) {
    if (error instanceof OAuthError) throw redirectError(ctx, redirectUri, safeState, error);
    throw error;
  }
}

async function checkClient(ctx: AppContext, clientId: string | undefined): Promise<ClientRow> {
  if (!clientId) throw new OAuthPageError("invalid_request", "The client_id parameter is missing.");
  const client = await findActiveClient(ctx.db, clientId);
  if (!client) throw new OAuthPageError("invalid_client", "The application (client_id) is unknown or disabled.");
  return client;
}

/** Exact string comparison (SECURITY.md): no normalization, no prefix or pattern matching. */
function checkRedirectUri(client: ClientRow, redirectUri: string | undefined): string {
  if (!redirectUri) throw new OAuthPageError("invalid_request", "The redirect_uri parameter is missing.");
  if (!client.redirectUris.includes(redirectUri)) {
    throw new OAuthPageError("invalid_request", "The redirect_uri is not registered for this application.");
  }
  return redirectUri;
}

function checkResponseType(p: Params<typeof AUTHORIZE_PARAMS>): void {
  if (!p.response_type) throw new OAuthError("invalid_request", "The response_type parameter is missing.");
  if (p.response_type !== "code") {
    throw new OAuthError("unsupported_response_type", "Only response_type=code is supported.");
  }
}

function checkResponseMode(p: Params<typeof AUTHORIZE_PARAMS>): void {
  if (p.response_mode !== undefined && p.response_mode !== "query") {
    throw new OAuthError("invalid_request", "Only response_mode=query is supported.");
  }
}

/** RFC 7636 with S256 only: a missing method means `plain` (RFC 7636 4.3), which is refused like an explicit one. */
function checkPkce(p: Params<typeof AUTHORIZE_PARAMS>): string {
  if (!p.code_challenge) throw new OAuthError("invalid_request", "PKCE is required: send code_challenge (S256).");
  if (p.code_challenge_method !== "S256") {
    throw new OAuthError("invalid_request", "code_challenge_method must be S256; plain is not allowed.");
  }
  if (!S256_CHALLENGE.test(p.code_challenge)) {
    throw new OAuthError("invalid_request", "code_challenge must be 43 characters of base64url (S256).");
  }
  return p.code_challenge;
}

function checkPrompt(p: Params<typeof AUTHORIZE_PARAMS>): Set<string> {
  const values = new Set((p.prompt ?? "").split(" ").filter(Boolean));
  for (const v of values) {
    if (!PROMPTS.has(v)) throw new OAuthError("invalid_request", "Unsupported prompt value.");
  }
  if (values.has("none") && values.size > 1) {
    throw new OAuthError("invalid_request", "prompt=none cannot be combined with other values.");
  }
  return values;
}

function checkMaxAge(p: Params<typeof AUTHORIZE_PARAMS>): number | undefined {
  if (p.max_age === undefined) return undefined;
  if (!/^\d{1,9}$/.test(p.max_age)) throw new OAuthError("invalid_request", "max_age must be a non-negative integer.");
  return Number(p.max_age);
}

/** The hint may be expired (OIDC Core 3.1.2.1) but must be Tessera's, with a valid signature. */
async function checkIdTokenHint(ctx: AppContext, p: Params<typeof AUTHORIZE_PARAMS>): Promise<string | undefined> {
  if (!p.id_token_hint) return undefined;
  try {
    const payload = await verifyJwt(ctx, p.id_token_hint, { allowExpired: true });
    if (typeof payload.sub !== "string") throw new Error("no sub");
    return payload.sub;
  } catch {
    throw new OAuthError("invalid_request", "The id_token_hint is not a valid ID token issued by Tessera.");
  }
}

/**
 * Decides what happens for a validated request and the browser's current session: sign in first, ask for consent,
 * or issue a code at once (silent sign-on across apps).
 */
export async function decide(
  ctx: AppContext,
  request: AuthorizationRequest,
  current: { session: SessionRow; user: UserRow } | null,
  options: { consented?: boolean } = {},
): Promise<AuthorizeDecision> {
  const now = ctx.clock.now();
  const fail = (error: OAuthError) => redirectError(ctx, request.redirectUri, request.state, error);
  // checkSession: a session of another user than the hint names does not count (the client wants that user).
  const session = current && (!request.hintSubject || current.user.id === request.hintSubject) ? current : null;
  const tooOld =
    session !== null &&
    request.maxAgeSeconds !== undefined &&
    Math.floor(now.getTime() / 1000) - Math.floor(session.session.authenticatedAt.getTime() / 1000) >
      request.maxAgeSeconds;
  const freshLoginDemanded = request.prompt.has("login") || tooOld;
  if (!session || freshLoginDemanded) {
    if (request.prompt.has("none")) throw fail(new OAuthError("login_required", "The user is not signed in."));
    return { kind: "login", location: loginLocation(request, freshLoginDemanded) };
  }

  // checkAuthenticationStrength: a client whose acr_values demand a second factor gets a fresh sign-in (password and
  // code) when the session was made without one; a user with no second factor cannot satisfy it, so the client is told.
  if (request.requireSecondFactor && !session.session.amr.includes("otp")) {
    if (request.prompt.has("none")) {
      throw fail(new OAuthError("interaction_required", "This application requires a sign-in with a second factor."));
    }
    if (!(await hasConfirmedTotp(ctx.db, session.user.id))) {
      throw fail(
        new OAuthError(
          "access_denied",
          "This application requires two-step verification, which is not turned on for this account.",
        ).withCode("SECOND_FACTOR_NOT_ENROLLED"),
      );
    }
    return { kind: "login", location: loginLocation(request, true) };
  }

  // checkConsent: first-party clients are trusted; third-party ones ask every time (nothing is remembered yet).
  if (!request.client.firstParty && !options.consented) {
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
