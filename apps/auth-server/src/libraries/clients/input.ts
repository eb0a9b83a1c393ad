import { z } from "zod";
import { AppError, type FieldError } from "../../errors/index.ts";
import { parse } from "../../validation.ts";

/**
 * A client registration as the library takes it, from the admin API (after renaming its wire fields) or the CLI.
 * Validated here, once, with one set of limits; per-field errors name these keys (`redirectUris.1`), and the admin
 * API renames them back to the wire names its caller sent.
 */
export interface ClientInput {
  name: string;
  logoUri?: string | null | undefined;
  /** Accent colour of the hosted pages for this client, `#rrggbb`. */
  brandColor?: string | null | undefined;
  redirectUris: string[];
  postLogoutRedirectUris?: string[] | undefined;
  backchannelLogoutUri?: string | null | undefined;
  firstParty?: boolean | undefined;
  /** Server-to-server sign-in with user credentials (trusted first-party games). Off by default. */
  directSignIn?: boolean | undefined;
  allowedScopes?: string[] | undefined;
  idTokenSignedResponseAlg?: SigningAlg | undefined;
  /** Override of ACCESS_TOKEN_TTL_SECONDS for this client (null: use the default). */
  accessTokenTtlSeconds?: number | null | undefined;
  /** OAuth grant types this client may use (default authorization_code and refresh_token). */
  grantTypes?: string[] | undefined;
  /** Guest accounts (POST /api/v1/guest) for this client. Off by default. */
  guestAccounts?: boolean | undefined;
  /** `none`: a public client (SPA, native game) with no secret. Fixed at registration. */
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod | undefined;
  /** Browser origins allowed to call /token, /userinfo and /revoke (CORS), e.g. `https://app.example`. */
  webOrigins?: string[] | undefined;
  /** Every token request must carry a DPoP proof (RFC 9449). */
  requireDpop?: boolean | undefined;
}

export type TokenEndpointAuthMethod = "client_secret_basic" | "client_secret_post" | "none";

/** The auth method is fixed at registration: turning a public client confidential would need a secret issued. */
export type ClientUpdate = Partial<Omit<ClientInput, "tokenEndpointAuthMethod">>;

/** Input not yet validated: the same keys with any values (a typed ClientInput is one). */
export type UntrustedClientInput = { [K in keyof ClientInput]?: unknown };

export type SigningAlg = "RS256" | "ES256" | "EdDSA";

export const DEFAULT_SCOPES = ["openid", "profile", "email", "offline_access"] as const;

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);
/**
 * RFC 8252 7.1: a private-use scheme for a native app is a reverse domain name the app's owner controls
 * (`com.example.game`): at least two labels, so `javascript:`, `data:`, `file:` and other one-word schemes never pass.
 */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/;
/** The limits of a registration (the admin API and the CLI share them). */
export const MAX_URI_LENGTH = 2000;
export const MAX_URIS = 20;
/** RFC 6749 3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;

/**
 * Why a URI may not be registered, or null when it may. Redirect URIs are compared as exact strings at /authorize,
 * so only absolute, canonical https URIs (http only on loopback) without fragments, wildcards, user info or
 * traversal tricks are accepted; a non-canonical spelling is refused with the canonical one in the message, so what
 * is stored is exactly what a browser will send back.
 */
export function registeredUriProblem(value: string, options: { nativeApp?: boolean } = {}): string | null {
  if (value.length === 0) return "must not be empty";
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1];
  if (options.nativeApp && scheme?.includes(".")) return privateUseUriProblem(value, scheme as string);
  if (value.length > MAX_URI_LENGTH) return `must be at most ${MAX_URI_LENGTH} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused here.
  if (/[\s\x00-\x1f\x7f]/.test(value)) return "must not contain spaces or control characters";
  if (value.includes("*")) return "must not contain wildcards";
  if (value.includes("#")) return "must not contain a fragment (#)";
  if (!/^https?:\/\//i.test(value)) return "must be an absolute https:// URI";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an absolute https:// URI";
  }
  if (url.username || url.password || url.host.includes("@")) return "must not contain user info (@)";
  if (url.protocol === "http:") {
    if (!LOOPBACK_HOSTS.has(url.hostname))
      return "must use https (http is allowed only for 127.0.0.1, [::1] and localhost)";
  } else if (url.protocol !== "https:") {
    return "must use https";
  }
  const rawPath = value.replace(/^https?:\/\/[^/?#]*/i, "").split("?")[0] ?? "";
  if (/\.\.;|%2e|%2f|%5c/i.test(rawPath)) return "must not contain encoded or disguised path traversal";
  if (url.href !== value) return `must be written in canonical form: ${url.href}`;
  return null;
}

/**
 * RFC 8252 7.1, for public clients only: `com.example.game:/callback` — a lower-case reverse-domain scheme, one
 * slash, a path, no authority, query or fragment. Matched exactly at /authorize like any other redirect URI.
 */
function privateUseUriProblem(value: string, scheme: string): string | null {
  if (value.length > MAX_URI_LENGTH) return `must be at most ${MAX_URI_LENGTH} characters`;
  if (!PRIVATE_USE_SCHEME.test(scheme)) {
    return "a private-use scheme must be a lower-case reverse domain name (com.example.app)";
  }
  const rest = value.slice(scheme.length + 1);
  if (!/^\/[A-Za-z0-9\-._~/]*$/.test(rest) || rest.startsWith("//")) {
    return "must be scheme:/path (one slash, no host, query, fragment or special characters)";
  }
  if (/(^|\/)\.\.?(\/|$)/.test(rest)) return "must not contain path traversal";
  return null;
}

/** A browser origin as a browser sends it in `Origin`: https (http only on loopback), host, optional port, no path. */
export function webOriginProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an origin such as https://app.example";
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname))) {
    return "must use https (http is allowed only for 127.0.0.1, [::1] and localhost)";
  }
  if (url.origin !== value) return `must be exactly an origin (no path, trailing slash or user info): ${url.origin}`;
  return null;
}

const nameSchema = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(100, "must be at most 100 characters")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a display name must not carry control characters.
  .refine((v) => !/[\x00-\x1f\x7f]/.test(v), "must not contain control characters");

const scopesSchema = z
  .array(z.string().regex(SCOPE_TOKEN, "must be a scope token (printable ASCII, no spaces)"))
  .min(1, "must not be empty")
  .max(50, "must have at most 50 scopes")
  .refine((v) => v.includes("openid"), "must include openid");

const uriList = z.array(z.string().max(MAX_URI_LENGTH)).max(MAX_URIS, `must have at most ${MAX_URIS} URIs`);
const algSchema = z.enum(["RS256", "ES256", "EdDSA"]);
/** The grant types a client may be registered for. */
export const GRANT_TYPES = [
  "authorization_code",
  "refresh_token",
  "client_credentials",
  "urn:ietf:params:oauth:grant-type:device_code",
] as const;
const grantTypesSchema = z
  .array(z.enum(GRANT_TYPES))
  .min(1, "must not be empty")
  .max(GRANT_TYPES.length * 2);

export const clientCreateSchema = z.strictObject({
  name: nameSchema,
  logoUri: z.string().max(MAX_URI_LENGTH).nullish(),
  brandColor: z
    .string()
    .regex(/^#[0-9a-fA-F]{6}$/, "must be a colour like #2948c7")
    .nullish(),
  // At least one unless the client cannot use authorization_code (a device-only console, a client_credentials service).
  redirectUris: uriList,
  postLogoutRedirectUris: uriList.optional(),
  backchannelLogoutUri: z.string().max(MAX_URI_LENGTH).nullish(),
  firstParty: z.boolean().optional(),
  directSignIn: z.boolean().optional(),
  allowedScopes: scopesSchema.optional(),
  idTokenSignedResponseAlg: algSchema.optional(),
  accessTokenTtlSeconds: z
    .number()
    .int("must be a whole number of seconds")
    .min(30, "must be at least 30")
    .max(3600, "must be at most 3600")
    .nullish(),
  grantTypes: grantTypesSchema.optional(),
  guestAccounts: z.boolean().optional(),
  tokenEndpointAuthMethod: z.enum(["client_secret_basic", "client_secret_post", "none"]).optional(),
  webOrigins: z.array(z.string().max(MAX_URI_LENGTH)).max(MAX_URIS, `must have at most ${MAX_URIS} origins`).optional(),
  requireDpop: z.boolean().optional(),
});

export const clientUpdateSchema = clientCreateSchema
  .omit({ tokenEndpointAuthMethod: true })
  .partial()
  .refine((v) => Object.values(v).some((x) => x !== undefined), {
    message: "nothing to update",
  });

/** Field problems of a public client's settings: no server-side sign-in (it would need a secret). */
function publicClientProblems(input: ClientUpdate, isPublic: boolean): FieldError[] {
  if (isPublic && input.directSignIn) {
    return [{ field: "directSignIn", message: "is not available to public clients (it needs a client secret)" }];
  }
  return [];
}

function checkUris(input: ClientUpdate, isPublic: boolean): void {
  const problems: FieldError[] = publicClientProblems(input, isPublic);
  if (problems.length) throw new AppError("VALIDATION_FAILED", undefined, problems);
  const check = (key: keyof ClientInput, value: string, index?: number, nativeApp = false) => {
    const problem = registeredUriProblem(value, { nativeApp });
    if (problem) problems.push({ field: index === undefined ? key : `${key}.${index}`, message: problem });
  };
  // Private-use schemes only for public clients (native apps): a confidential web back end has no use for them.
  for (const [i, u] of (input.redirectUris ?? []).entries()) check("redirectUris", u, i, isPublic);
  for (const [i, o] of (input.webOrigins ?? []).entries()) {
    const problem = webOriginProblem(o);
    if (problem) problems.push({ field: `webOrigins.${i}`, message: problem });
  }
  for (const [i, u] of (input.postLogoutRedirectUris ?? []).entries()) check("postLogoutRedirectUris", u, i);
  if (input.backchannelLogoutUri) check("backchannelLogoutUri", input.backchannelLogoutUri);
  if (input.logoUri) check("logoUri", input.logoUri);
  if (problems.length) throw new AppError("INVALID_REDIRECT_URI", undefined, problems);
}

/**
 * Redirect URIs may be empty only for a client that cannot use authorization_code (a device-only console, a
 * client_credentials service); an update emptying them must say so with its grant types in the same request.
 */
function checkRedirectUrisNeeded(input: ClientUpdate): void {
  if (input.redirectUris === undefined || input.redirectUris.length > 0) return;
  if (!(input.grantTypes ?? ["authorization_code"]).includes("authorization_code")) return;
  throw new AppError("VALIDATION_FAILED", undefined, [
    { field: "redirectUris", message: "must have at least one redirect URI" },
  ]);
}

/** A new registration, validated (VALIDATION_FAILED / INVALID_REDIRECT_URI with per-field errors). */
export function validClientInput(input: UntrustedClientInput): ClientInput {
  const valid = parse(clientCreateSchema, input);
  checkRedirectUrisNeeded(valid);
  checkUris(valid, valid.tokenEndpointAuthMethod === "none");
  return valid;
}

/** A change to a registration, validated like a new one; at least one field must be present. */
export function validClientUpdate(input: UntrustedClientInput, isPublic: boolean): ClientUpdate {
  const valid = parse(clientUpdateSchema, input);
  checkRedirectUrisNeeded(valid);
  checkUris(valid, isPublic);
  return valid;
}

const dedupe = (values: string[] | undefined) => (values ? [...new Set(values)] : undefined);

/** Row values for the validated fields that are present (undefined fields are left alone on update). */
export function rowValues(input: ClientUpdate) {
  return {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.logoUri !== undefined ? { logoUrl: input.logoUri || null } : {}),
    ...(input.brandColor !== undefined ? { brandColor: input.brandColor?.toLowerCase() || null } : {}),
    ...(input.redirectUris !== undefined ? { redirectUris: dedupe(input.redirectUris) } : {}),
    ...(input.postLogoutRedirectUris !== undefined
      ? { postLogoutRedirectUris: dedupe(input.postLogoutRedirectUris) }
      : {}),
    ...(input.backchannelLogoutUri !== undefined ? { backchannelLogoutUri: input.backchannelLogoutUri || null } : {}),
    ...(input.firstParty !== undefined ? { firstParty: input.firstParty } : {}),
    ...(input.directSignIn !== undefined ? { directSignInEnabled: input.directSignIn } : {}),
    ...(input.allowedScopes !== undefined ? { allowedScopes: dedupe(input.allowedScopes) } : {}),
    ...(input.idTokenSignedResponseAlg !== undefined
      ? { idTokenSignedResponseAlg: input.idTokenSignedResponseAlg }
      : {}),
    ...(input.accessTokenTtlSeconds !== undefined ? { accessTokenTtlSeconds: input.accessTokenTtlSeconds } : {}),
    ...(input.grantTypes !== undefined ? { grantTypes: dedupe(input.grantTypes) } : {}),
    ...(input.guestAccounts !== undefined ? { guestAccountsEnabled: input.guestAccounts } : {}),
    ...(input.webOrigins !== undefined ? { webOrigins: dedupe(input.webOrigins) } : {}),
    ...(input.requireDpop !== undefined ? { requireDpop: input.requireDpop } : {}),
  };
}
