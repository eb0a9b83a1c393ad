import { TesseraConfigError, type TesseraError } from "./errors.ts";
import { MemoryRevokedSessionStore, type RevokedSessionStore } from "./revocation.ts";
import type { WebhookOptions } from "./webhooks.ts";

/**
 * Cookie names; with `secure: true` and path `/` they carry the `__Host-` prefix (host-only, no Domain).
 *
 * @example
 * ```ts
 * createTessera({ ...options, cookies: { secure: true, names: { access: "__Host-session" } } });
 * tessera.cookieNames.refresh; // "__Host-tsdk-rt"
 * ```
 */
export interface CookieNames {
  /** The app's own HS256 access JWT. */
  access: string;
  /** Tessera's opaque refresh token (`tsr_…`). */
  refresh: string;
  /** The last ID token, kept only as `id_token_hint` for RP-initiated logout. */
  idToken: string;
  /** The sealed login transaction (state, nonce, PKCE verifier, returnTo), for ten minutes. */
  transaction: string;
}

/**
 * Options of {@link createTessera}. Only `issuer`, `clientId`, `clientSecret`, `appSecret`, `redirectUri` and
 * `cookies.secure` are required.
 *
 * @example
 * ```ts
 * const options: TesseraOptions = {
 *   issuer: "https://id.example.com",
 *   clientId: "shop",
 *   clientSecret: process.env.TESSERA_CLIENT_SECRET!,
 *   appSecret: process.env.APP_SECRET!,
 *   redirectUri: "https://shop.example.com/auth/callback",
 *   cookies: { secure: true, prefix: "shop" },
 * };
 * ```
 */
export interface TesseraOptions {
  /** Tessera's issuer URL, exactly as in its discovery document (e.g. `https://id.example.com`). */
  issuer: string;
  /** This app's client_id at Tessera. */
  clientId: string;
  /** This app's client_secret at Tessera (used only server-to-server, at /token and /revoke). */
  clientSecret: string;
  /**
   * This app's OWN secret (at least 32 bytes) that signs its access JWTs and seals the login cookie. Not the
   * client_secret: rotating one must not force rotating the other. Generate with `openssl rand -base64 32`.
   */
  appSecret: string | Buffer;
  /** The absolute callback URL registered at Tessera, e.g. `https://shop.example.com/auth/callback`. */
  redirectUri: string;
  /**
   * Origins this app is served from (`https://shop.example.com`). A sign-out POST or a WebSocket upgrade whose
   * `Origin` header names any other origin is refused (CSRF, cross-site WebSocket hijacking: SameSite=Lax cookies
   * still travel between sites of one domain, and between ports of one host). Default: the origin of `redirectUri`.
   */
  origins?: string[];
  /** Where Tessera sends the browser after sign-out; must be registered at Tessera. */
  postLogoutRedirectUri?: string;
  /**
   * Scopes to ask for. Default `openid profile email offline_access roles` (offline_access yields the refresh token;
   * roles, the `roles`, `permissions` and `entitlements` claims of this app).
   */
  scope?: string;
  /** Allowed ID/logout token algorithms, asymmetric only. Default `["RS256", "ES256", "EdDSA"]`. */
  idTokenAlgorithms?: Array<"RS256" | "ES256" | "EdDSA">;
  /** How to authenticate at /token. Default `client_secret_basic`. */
  tokenEndpointAuthMethod?: "client_secret_basic" | "client_secret_post";
  /** Lifetime of the app's access JWT. Default 300 (5 minutes). */
  accessTokenTtlSeconds?: number;
  /** Refresh this long before the access JWT expires. Default 30. */
  refreshBeforeExpirySeconds?: number;
  /**
   * How long one refresh's outcome is reused for requests still carrying the old refresh token (responses in flight
   * in the browser). Keep it at or below Tessera's refresh grace window. Default 10.
   */
  refreshReuseSeconds?: number;
  /** Claims copied from Tessera's ID token into the access JWT. Default `["roles", "permissions", "entitlements"]`. */
  extraClaims?: string[];
  cookies: {
    /**
     * Whether cookies carry `Secure` (and so the `__Host-` prefix). Explicit on purpose: never guessed from NODE_ENV.
     * Must be true whenever the app is served over https.
     */
    secure: boolean;
    /** Prefix of the default cookie names; give every app on one host its own (cookies ignore ports). Default `tsdk`. */
    prefix?: string;
    /** Override any cookie name. */
    names?: Partial<CookieNames>;
    /** Path of the refresh cookie. Default `/` (a refresh can happen on any request). */
    refreshPath?: string;
  };
  /** Where revoked session ids are kept. Default: an in-memory {@link MemoryRevokedSessionStore}. */
  revokedSessions?: RevokedSessionStore;
  /** Maximum number of verified access JWTs kept in memory. Default 10 000. */
  accessTokenCacheSize?: number;
  /** Timeout of each call to Tessera in milliseconds. Default 5000. */
  httpTimeoutMs?: number;
  /** The clock in epoch milliseconds (tests move it). Default `Date.now`. */
  now?: () => number;
  /** The fetch implementation for calls to Tessera. Default the global `fetch`. */
  fetch?: typeof fetch;
  /** Verifying Tessera's webhooks (`tessera.webhooks.verify`): the signing secret and handlers. */
  webhooks?: WebhookOptions;
  /**
   * Where the SDK reports a misconfiguration it detects (wrong client secret, issuer mismatch, unregistered redirect
   * URI, Tessera unreachable): once per cause, never with a secret. Default `console`.
   */
  logger?: { warn(message: string): void };
  /**
   * The HTML page a browser gets when the sign-in callback fails (a failed code exchange, a state mismatch, …).
   * Default: a short page naming the stable code (`data-error`) and linking to a fresh sign-in.
   */
  errorPage?: (error: TesseraError) => string;
}

/**
 * @example
 * ```ts
 * tessera.options.accessTokenTtlSeconds; // 300 unless configured
 * ```
 */
export interface ResolvedOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  appSecret: Buffer;
  redirectUri: string;
  origins: ReadonlySet<string>;
  postLogoutRedirectUri: string | undefined;
  scope: string;
  idTokenAlgorithms: string[];
  tokenEndpointAuthMethod: "client_secret_basic" | "client_secret_post";
  accessTokenTtlSeconds: number;
  refreshBeforeExpirySeconds: number;
  refreshReuseSeconds: number;
  extraClaims: string[];
  secure: boolean;
  names: CookieNames;
  refreshPath: string;
  revokedSessions: RevokedSessionStore;
  accessTokenCacheSize: number;
  httpTimeoutMs: number;
  now: () => number;
  fetch: typeof fetch;
  logger: { warn(message: string): void };
  errorPage: ((error: TesseraError) => string) | undefined;
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/;
const ALGORITHMS = new Set(["RS256", "ES256", "EdDSA"]);
const RESERVED_CLAIMS = new Set(["sub", "sid", "sxp", "aud", "iss", "iat", "exp", "nbf", "jti", "rth"]);

function fail(message: string): never {
  throw new TesseraConfigError(`Tessera SDK: ${message}`);
}

function absoluteUrl(name: string, value: unknown): string {
  if (typeof value !== "string") fail(`${name}: required, an absolute http(s) URL`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(`${name}: "${value}" is not an absolute URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") fail(`${name}: must be an http(s) URL`);
  return value;
}

function seconds(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) fail(`${name}: an integer from ${min} to ${max}`);
  return value;
}

/**
 * Validates options once at start-up; every problem is a {@link TesseraConfigError} naming the option.
 * @internal
 *
 * @example
 * ```ts
 * const resolved = resolveOptions(options); // throws TesseraConfigError naming the bad option
 * ```
 */
export function resolveOptions(options: TesseraOptions): ResolvedOptions {
  if (!options || typeof options !== "object") fail("options are required");
  const issuer = absoluteUrl("issuer", options.issuer).replace(/\/+$/, "");
  if (typeof options.clientId !== "string" || !options.clientId) fail("clientId: required");
  if (typeof options.clientSecret !== "string" || !options.clientSecret) fail("clientSecret: required");
  const appSecret = typeof options.appSecret === "string" ? Buffer.from(options.appSecret, "utf8") : options.appSecret;
  if (!Buffer.isBuffer(appSecret) || appSecret.length < 32) {
    fail(
      "appSecret: must be at least 32 bytes (it signs the app's HS256 access JWTs; a shorter key can be brute-forced). " +
        "Generate one with: openssl rand -base64 32",
    );
  }
  const redirectUri = absoluteUrl("redirectUri", options.redirectUri);
  const origins = new Set<string>();
  for (const [index, origin] of (options.origins ?? [new URL(redirectUri).origin]).entries()) {
    const url = new URL(absoluteUrl(`origins[${index}]`, origin));
    if (url.origin !== origin) fail(`origins[${index}]: "${origin}" is not an origin; did you mean "${url.origin}"?`);
    origins.add(origin);
  }
  if (origins.size === 0) fail("origins: at least one origin");
  const postLogoutRedirectUri =
    options.postLogoutRedirectUri === undefined
      ? undefined
      : absoluteUrl("postLogoutRedirectUri", options.postLogoutRedirectUri);
  if (!options.cookies || typeof options.cookies.secure !== "boolean") {
    fail("cookies.secure: required, true or false (true whenever the app is served over https)");
  }
  const secure = options.cookies.secure;
  if (secure && new URL(redirectUri).protocol !== "https:" && new URL(redirectUri).hostname !== "localhost") {
    fail("cookies.secure is true but redirectUri is not https: the browser would never send the cookies back");
  }
  const prefix = options.cookies.prefix ?? "tsdk";
  const refreshPath = options.cookies.refreshPath ?? "/";
  if (!refreshPath.startsWith("/") || /[;\s]/.test(refreshPath)) fail("cookies.refreshPath: an absolute path");
  // __Host- needs Secure, Path=/ and no Domain; a narrower Secure cookie can still say __Secure-.
  const host = secure ? "__Host-" : "";
  const names: CookieNames = {
    access: `${host}${prefix}-at`,
    refresh: `${secure ? (refreshPath === "/" ? "__Host-" : "__Secure-") : ""}${prefix}-rt`,
    idToken: `${host}${prefix}-idt`,
    transaction: `${host}${prefix}-tx`,
    ...options.cookies.names,
  };
  for (const [key, name] of Object.entries(names)) {
    if (!COOKIE_NAME.test(name)) fail(`cookies.names.${key}: "${name}" is not a valid cookie name`);
  }
  if (new Set(Object.values(names)).size !== 4) fail("cookies.names: the four cookie names must differ");

  const idTokenAlgorithms = options.idTokenAlgorithms ?? ["RS256", "ES256", "EdDSA"];
  if (idTokenAlgorithms.length === 0 || idTokenAlgorithms.some((alg) => !ALGORITHMS.has(alg))) {
    fail("idTokenAlgorithms: a non-empty list of RS256, ES256, EdDSA (symmetric and none are never accepted)");
  }
  const method = options.tokenEndpointAuthMethod ?? "client_secret_basic";
  if (method !== "client_secret_basic" && method !== "client_secret_post") {
    fail("tokenEndpointAuthMethod: client_secret_basic or client_secret_post");
  }
  const extraClaims = options.extraClaims ?? ["roles", "permissions", "entitlements"];
  for (const claim of extraClaims) {
    // These are the SDK's own: copied from Tessera they would change whose, which session's or how long-lived the
    // access JWT is.
    if (typeof claim !== "string" || RESERVED_CLAIMS.has(claim)) {
      fail(`extraClaims: "${String(claim)}" cannot be copied (reserved: ${[...RESERVED_CLAIMS].join(", ")})`);
    }
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== "function") fail("fetch: no global fetch; pass one");
  const now = options.now ?? Date.now;

  return {
    issuer,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    appSecret,
    redirectUri,
    origins,
    postLogoutRedirectUri,
    scope: options.scope ?? "openid profile email offline_access roles",
    idTokenAlgorithms,
    tokenEndpointAuthMethod: method,
    accessTokenTtlSeconds: seconds("accessTokenTtlSeconds", options.accessTokenTtlSeconds, 300, 10, 3600),
    refreshBeforeExpirySeconds: seconds("refreshBeforeExpirySeconds", options.refreshBeforeExpirySeconds, 30, 0, 600),
    refreshReuseSeconds: seconds("refreshReuseSeconds", options.refreshReuseSeconds, 10, 0, 120),
    extraClaims,
    secure,
    names,
    refreshPath,
    revokedSessions: options.revokedSessions ?? new MemoryRevokedSessionStore({ now }),
    accessTokenCacheSize: seconds("accessTokenCacheSize", options.accessTokenCacheSize, 10_000, 1, 10_000_000),
    httpTimeoutMs: seconds("httpTimeoutMs", options.httpTimeoutMs, 5000, 100, 120_000),
    now,
    fetch: fetchImpl,
    logger: options.logger ?? console,
    errorPage: options.errorPage,
  };
}
