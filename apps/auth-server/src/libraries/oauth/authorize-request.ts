import type { AppContext } from "../../context.ts";
import { OAuthError, OAuthPageError } from "../../errors/index.ts";
import { type ClientRow, findActiveClient } from "../clients/index.ts";
import { verifyJwt } from "../keys/index.ts";
import { acrValuesDemandSecondFactor } from "./acr.ts";
import { type Params, readParams } from "./params.ts";
import { S256_CHALLENGE } from "./pkce.ts";
import { checkScope } from "./scopes.ts";

/**
 * The validation half of /authorize: which parameters are read, the ordered checks, and how an error goes back to
 * the client. The decisions (session, second factor, consent, code) are in authorize.ts.
 */

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

/** Appends parameters to a registered redirect URI, keeping any query it already has. */
export function withParams(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return url.toString();
}

export function redirectError(ctx: AppContext, redirectUri: string, state: string | undefined, error: OAuthError) {
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
    checkRequestObjects(input);
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

/**
 * RFC 8252 7.3 loopback redirect: `http://127.0.0.1[:port]/path` or `http://[::1][:port]/path`. The port is the only
 * part allowed to differ from the registered URI (a native app listens on an ephemeral port); everything else is
 * compared as the exact string. `localhost` is not a loopback IP (RFC 8252 8.3) and stays exact-match.
 */
const LOOPBACK_REDIRECT = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::([1-9][0-9]{0,4}))?([/?][^#]*)?$/;

function loopbackMatches(registered: string, requested: string): boolean {
  const want = LOOPBACK_REDIRECT.exec(registered);
  const got = LOOPBACK_REDIRECT.exec(requested);
  if (!want || !got) return false;
  if (got[2] !== undefined && Number(got[2]) > 65535) return false;
  return want[1] === got[1] && (want[3] ?? "") === (got[3] ?? "");
}

/**
 * Exact string comparison (SECURITY.md): no normalization, no prefix or pattern matching — except the port of a
 * registered loopback IP redirect (RFC 8252 7.3).
 */
function checkRedirectUri(client: ClientRow, redirectUri: string | undefined): string {
  if (!redirectUri) throw new OAuthPageError("invalid_request", "The redirect_uri parameter is missing.");
  if (!client.redirectUris.includes(redirectUri) && !client.redirectUris.some((r) => loopbackMatches(r, redirectUri))) {
    throw new OAuthPageError("invalid_request", "The redirect_uri is not registered for this application.");
  }
  return redirectUri;
}

/** OIDC Core 6: request objects are not supported (discovery says so); refused by name rather than ignored. */
function checkRequestObjects(input: unknown): void {
  const raw = input && typeof input === "object" ? (input as Record<string, unknown>) : {};
  if (raw.request !== undefined && raw.request !== "") {
    throw new OAuthError("request_not_supported", "The request parameter (a request object) is not supported.");
  }
  if (raw.request_uri !== undefined && raw.request_uri !== "") {
    throw new OAuthError("request_uri_not_supported", "The request_uri parameter is not supported.");
  }
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
