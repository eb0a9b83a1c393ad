import { AccessTokenCodec } from "./access-token.ts";
import { Authenticator } from "./authenticator.ts";
import { SdkContext } from "./context.ts";
import { SessionCookies } from "./cookies.ts";
import { TesseraConfigError, TesseraError } from "./errors.ts";
import { IssuerClient } from "./issuer.ts";
import { LoginFlow } from "./login-flow.ts";
import { Logout } from "./logout.ts";
import { type CookieNames, type ResolvedOptions, resolveOptions, type TesseraOptions } from "./options.ts";
import { deriveKey } from "./seal.ts";
import type {
  AuthInput,
  AuthResult,
  CallbackResult,
  LoginInput,
  LoginResult,
  LogoutResult,
  SessionRevokedEvent,
} from "./types.ts";
import { TesseraWebhooks } from "./webhooks.ts";

export type {
  AuthInput,
  AuthResult,
  CallbackResult,
  LoginInput,
  LoginResult,
  LogoutResult,
  SessionRevokedEvent,
} from "./types.ts";

/**
 * The framework-neutral client. Adapters (`@tessera/sdk/fastify`, `@tessera/sdk/node`) call it through the neutral
 * handler (`@tessera/sdk`'s `createHandler`) and translate its answers; any other framework can do the same.
 *
 * @example
 * ```ts
 * import { createTessera } from "@tessera/sdk";
 *
 * const tessera = createTessera({
 *   issuer: "https://id.example.com",
 *   clientId: process.env.TESSERA_CLIENT_ID!,
 *   clientSecret: process.env.TESSERA_CLIENT_SECRET!,
 *   appSecret: process.env.APP_SECRET!, // ≥ 32 bytes, this app's own
 *   redirectUri: "https://shop.example.com/auth/callback",
 *   postLogoutRedirectUri: "https://shop.example.com/",
 *   cookies: { secure: true, prefix: "shop" },
 * });
 * const { user, setCookies } = await tessera.authenticate({ cookieHeader: req.headers.cookie });
 * ```
 */
export function createTessera(options: TesseraOptions): TesseraClient {
  return new TesseraClient(options);
}

/**
 * See {@link createTessera}. One instance per app; it holds the verified-token cache, the single-flight refresh map
 * and the revoked-session store. Its parts live in their own modules: the sign-in (`login-flow.ts`), request
 * authentication (`authenticator.ts`) with the refresher (`refresher.ts`), cookies (`cookies.ts`) and sign-out /
 * back-channel logout (`logout.ts`).
 *
 * @example
 * ```ts
 * const tessera = new TesseraClient({ issuer, clientId, clientSecret, appSecret, redirectUri, cookies: { secure: true } });
 * const { url, setCookies } = await tessera.login({ returnTo: "/cart" });
 * ```
 */
export class TesseraClient {
  /** The validated options. */
  readonly options: ResolvedOptions;
  /** The cookie names in use (see `cookies.prefix` / `cookies.names`). */
  readonly cookieNames: Readonly<CookieNames>;
  readonly #context: SdkContext;
  readonly #login: LoginFlow;
  readonly #authenticator: Authenticator;
  readonly #logout: Logout;
  /** Verifies Tessera's signed webhooks and reacts to them (see {@link TesseraWebhooks}). */
  readonly webhooks: TesseraWebhooks;
  /** Misconfigurations already reported: each cause is logged once, not on every request. */
  readonly #reported = new Set<string>();

  constructor(options: TesseraOptions) {
    const o = resolveOptions(options);
    this.options = o;
    this.cookieNames = Object.freeze({ ...o.names });
    const issuer = new IssuerClient({
      issuer: o.issuer,
      clientId: o.clientId,
      clientSecret: o.clientSecret,
      authMethod: o.tokenEndpointAuthMethod,
      idTokenAlgorithms: o.idTokenAlgorithms,
      httpTimeoutMs: o.httpTimeoutMs,
      fetch: o.fetch,
      now: o.now,
    });
    const codec = new AccessTokenCodec({
      secret: deriveKey(o.appSecret, "access-jwt"),
      audience: o.clientId,
      cacheSize: o.accessTokenCacheSize,
    });
    this.#context = new SdkContext(o, issuer, codec, new SessionCookies(o));
    this.#login = new LoginFlow(this.#context);
    this.#authenticator = new Authenticator(this.#context);
    this.#logout = new Logout(this.#context);
    const context = this.#context;
    this.webhooks = new TesseraWebhooks(
      options.webhooks,
      {
        sessionEnded: (sid, sub) => this.#logout.revokeSession(sid, sub, "backchannel_logout"),
        claimsChanged: (sub) => context.staleClaims.mark(sub, o.now()),
      },
      o.now,
    );
  }

  /**
   * Fetches Tessera's discovery document now (otherwise it is fetched on first use). Rejects with ISSUER_UNAVAILABLE.
   *
   * @example
   * ```ts
   * await tessera.ready(); // fail fast at start-up if Tessera is misconfigured
   * ```
   */
  async ready(): Promise<void> {
    try {
      await this.#context.issuer.metadata();
    } catch (error) {
      if (error instanceof TesseraError) this.#report(error);
      throw error;
    }
  }

  /**
   * Checks this app's configuration against Tessera, for start-up: discovery answers and names exactly `issuer`, the
   * client credentials are accepted (a call to the revocation endpoint with a token that does not exist: changes
   * nothing), and `redirectUri` is registered for this client (/authorize asked without following it). Each problem
   * is logged once through `logger` and returned; never rejects.
   *
   * @example
   * ```ts
   * const { ok, problems } = await tessera.check();
   * if (!ok) process.exitCode = 1; // e.g. [{ code: "INVALID_CLIENT", message: "Tessera refused ... client secret" }]
   * ```
   */
  async check(): Promise<{ ok: boolean; problems: { code: string; message: string }[] }> {
    const problems: { code: string; message: string }[] = [];
    const add = (code: string, message: string) => {
      problems.push({ code, message });
      this.#warnOnce(code, message);
    };
    const { issuer } = this.#context;
    try {
      await issuer.metadata();
      if ((await issuer.checkCredentials()) === "invalid_client") {
        add("INVALID_CLIENT", this.#describe("INVALID_CLIENT"));
      } else if ((await issuer.checkRedirectUri(this.options.redirectUri)) === "refused") {
        add("REDIRECT_URI_NOT_REGISTERED", this.#describe("REDIRECT_URI_NOT_REGISTERED"));
      }
    } catch (error) {
      if (!(error instanceof TesseraError)) throw error;
      add(error.code, this.#describe(error.code, error));
    }
    return { ok: problems.length === 0, problems };
  }

  /**
   * The HTML page for a failed sign-in callback: `errorPage` when configured, otherwise a short page with the
   * message, the stable code (`data-error`) and a link to a fresh sign-in at `loginPath`.
   *
   * @example
   * ```ts
   * res.writeHead(error.status, { "content-type": "text/html; charset=utf-8" }).end(tessera.errorPage(error, "/auth/login"));
   * ```
   */
  errorPage(error: TesseraError, loginPath = "/auth/login"): string {
    if (this.options.errorPage) return this.options.errorPage(error);
    const code = escapeHtml(error.code);
    const detail = error.oauthError ? ` (${escapeHtml(error.oauthError)})` : "";
    return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign-in failed</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
<main>
<h1>Sign-in failed</h1>
<p>${escapeHtml(error.message)} Please try again; if it keeps failing, contact the site's support with the code below.</p>
<p>Error code: <code data-error="${code}">${code}</code>${detail}</p>
<p><a href="${escapeHtml(loginPath)}">Sign in again</a></p>
</main>
</body>
</html>
`;
  }

  /** Logs a misconfiguration a failed call revealed, once per cause. */
  #report(error: TesseraError): void {
    if (error.code === "TOKEN_EXCHANGE_FAILED" && error.oauthError === "invalid_client") {
      this.#warnOnce("INVALID_CLIENT", this.#describe("INVALID_CLIENT"));
    } else if (error.code === "TOKEN_EXCHANGE_FAILED" && error.oauthError) {
      this.#warnOnce(`TOKEN_EXCHANGE_FAILED:${error.oauthError}`, this.#describe(error.code, error));
    } else if (error.code === "ISSUER_MISMATCH" || error.code === "ISSUER_UNAVAILABLE") {
      this.#warnOnce(error.code, this.#describe(error.code, error));
    }
  }

  #warnOnce(key: string, message: string): void {
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.options.logger.warn(message);
  }

  #describe(code: string, error?: TesseraError): string {
    const { clientId, issuer, redirectUri } = this.options;
    const prefix = `@tessera/sdk (client ${clientId}): ${code}:`;
    switch (code) {
      case "INVALID_CLIENT":
        return `${prefix} Tessera refused this app's client credentials (invalid_client). Check clientId and clientSecret (TESSERA_CLIENT_ID / TESSERA_CLIENT_SECRET): the secret is shown once when the client is created or rotated.`;
      case "REDIRECT_URI_NOT_REGISTERED":
        return `${prefix} Tessera refused /authorize for redirectUri ${redirectUri}. Register exactly this URI for the client (tessera clients update … --redirect-uri ${redirectUri}).`;
      case "ISSUER_MISMATCH":
        return `${prefix} the sign-in response named another issuer than ${issuer}. Set issuer to Tessera's ISSUER exactly (scheme, host, port, no trailing slash).`;
      case "ISSUER_UNAVAILABLE":
        return `${prefix} ${error?.message ?? "Tessera is unreachable."} Discovery: ${issuer}/.well-known/openid-configuration.`;
      default:
        return `${prefix} ${error?.message ?? ""}${error?.oauthError ? ` Tessera answered ${error.oauthError}.` : ""}`;
    }
  }

  /**
   * Starts a sign-in: returns the /authorize URL (code flow, PKCE S256, fresh `state` and `nonce`) and a sealed,
   * ten-minute transaction cookie holding them. `returnTo` is kept only if it is a same-origin path.
   *
   * @example
   * ```ts
   * const { url, setCookies } = await tessera.login({ returnTo: req.query.returnTo });
   * res.setHeader("set-cookie", setCookies).writeHead(302, { location: url }).end();
   * ```
   */
  login(input: LoginInput = {}): Promise<LoginResult> {
    return this.#login.login(input);
  }

  /**
   * Completes a sign-in from the callback request: checks the transaction cookie, `state`, `iss`, exchanges the code
   * with the client_secret and PKCE verifier, verifies the ID token (JWKS, pinned algorithms, `iss`, `aud`, `nonce`,
   * `sid`), then signs the app's own access JWT. Throws a {@link TesseraError}; on any outcome the transaction cookie
   * is spent (see {@link TesseraClient.clearTransactionCookie}).
   *
   * @example
   * ```ts
   * const { returnTo, setCookies } = await tessera.callback({ url: req.url!, cookieHeader: req.headers.cookie });
   * res.setHeader("set-cookie", setCookies).writeHead(303, { location: returnTo }).end();
   * ```
   */
  async callback(input: { url: string; cookieHeader?: string | undefined }): Promise<CallbackResult> {
    try {
      return await this.#login.callback(input);
    } catch (error) {
      if (error instanceof TesseraError) this.#report(error);
      throw error;
    }
  }

  /**
   * Authenticates a request, the one entry point for it: verifies the access JWT (cookie or bearer) and the
   * revoked-session set; when the JWT has expired or is about to, rotates the refresh token at Tessera (one refresh per
   * token per process, however many requests arrive together) and returns the renewed cookies. A refused refresh
   * clears the cookies. Answers synchronously when no I/O is needed (a valid cached or HMAC-checked access JWT, an
   * anonymous request; the adapters' hot path) and with a promise otherwise (a refresh, an asynchronous
   * revoked-session store): `await` it either way. Never throws, and the promise never rejects.
   *
   * @example
   * ```ts
   * const { user, error, setCookies } = await tessera.authenticate({ cookieHeader: req.headers.cookie });
   * if (setCookies.length) res.setHeader("set-cookie", setCookies);
   * if (!user) return res.writeHead(401).end(error?.code);
   * ```
   */
  authenticate(input: AuthInput): AuthResult | Promise<AuthResult> {
    return this.#authenticator.authenticate(input);
  }

  /**
   * Whether an `Origin` header may act with this app's cookies: absent (not a browser, or a same-origin GET) or one
   * of the app's `origins`. The adapters refuse a sign-out POST and a WebSocket upgrade otherwise.
   *
   * @example
   * ```ts
   * if (!tessera.isAllowedOrigin(req.headers.origin)) return res.writeHead(403).end();
   * ```
   */
  isAllowedOrigin(origin: string | undefined): boolean {
    return this.#authenticator.isAllowedOrigin(origin);
  }

  /**
   * Signs the user out everywhere: records the session as revoked here at once, revokes this app's refresh token at
   * Tessera (RFC 7009, best effort), clears the cookies, and returns Tessera's RP-initiated logout URL (with
   * `id_token_hint`, `post_logout_redirect_uri`, `client_id`, `state`) where Tessera ends the session for every app
   * and sends each one a back-channel logout.
   *
   * @example
   * ```ts
   * const { url, setCookies } = await tessera.logout({ cookieHeader: req.headers.cookie });
   * res.setHeader("set-cookie", setCookies).writeHead(303, { location: url }).end();
   * ```
   */
  logout(input: { cookieHeader?: string | undefined }): Promise<LogoutResult> {
    return this.#logout.logout(input);
  }

  /**
   * Handles Tessera's back-channel logout POST: verifies the logout token (signature via JWKS with pinned
   * algorithms, `typ: logout+jwt`, `iss`, `aud`, `iat`, `exp`, `jti`, the back-channel `events` member, a `sid`, and
   * no `nonce`), records the session as revoked and notifies {@link TesseraClient.onSessionRevoked} listeners.
   * Throws LOGOUT_TOKEN_INVALID; per the spec, answer 200 on success and 400 otherwise.
   *
   * @example
   * ```ts
   * const form = new URLSearchParams(rawBody);
   * await tessera.handleBackchannelLogout({ logoutToken: form.get("logout_token") });
   * ```
   */
  handleBackchannelLogout(input: { logoutToken: unknown }): Promise<SessionRevokedEvent> {
    return this.#logout.handleBackchannelLogout(input);
  }

  /**
   * Records a session as revoked (its access JWTs are refused from now on) and notifies listeners. Called by
   * {@link TesseraClient.handleBackchannelLogout} and {@link TesseraClient.logout}; apps rarely call it directly.
   *
   * @example
   * ```ts
   * await tessera.revokeSession(user.sessionId, user.id, "logout");
   * ```
   */
  revokeSession(
    sessionId: string,
    userId: string | undefined,
    reason: SessionRevokedEvent["reason"],
  ): Promise<SessionRevokedEvent> {
    return this.#logout.revokeSession(sessionId, userId, reason);
  }

  /**
   * Subscribes to session revocations (back-channel logout or local sign-out), e.g. to close that session's
   * WebSockets. Returns the unsubscribe function.
   *
   * @example
   * ```ts
   * tessera.onSessionRevoked(({ sessionId }) => {
   *   for (const socket of socketsBySession.get(sessionId) ?? []) socket.close(4001, "signed out");
   * });
   * ```
   */
  onSessionRevoked(listener: (event: SessionRevokedEvent) => void): () => void {
    return this.#logout.onSessionRevoked(listener);
  }

  /**
   * The URL that sells a Tessera plan to the signed-in user: Tessera's `/billing/checkout`, which sends the browser
   * to the payment provider and then back to `returnTo` (a path of this app, or an absolute URL on an app registered
   * with Tessera). The purchase unlocks its entitlements in every app; they appear in the `entitlements` claim at the
   * next refresh. Nothing here is trusted for the price: Tessera reads it from its own records.
   *
   * @example
   * ```ts
   * reply.redirect(tessera.checkoutUrl("premium", { returnTo: "/premium/thanks" }), 303);
   * ```
   */
  /**
   * Marks a user's claims stale in this process: their next request refreshes its tokens at once (new roles,
   * permissions, entitlements) instead of at the access JWT's expiry — e.g. when the user comes back from Tessera's
   * checkout. Webhooks (`roles.changed`, `entitlements.changed`) do the same through `webhooks.verify`.
   *
   * @example
   * ```ts
   * app.get("/premium/done", { onRequest: requireUser }, async (request, reply) => {
   *   tessera.markClaimsStale(request.user!.id);
   *   return reply.redirect("/", 303);
   * });
   * ```
   */
  markClaimsStale(sub: string): void {
    this.#context.staleClaims.mark(sub, this.options.now());
  }

  checkoutUrl(plan: string, options: { returnTo?: string; method?: "card" | "crypto" } = {}): string {
    if (!/^[a-z0-9][a-z0-9._:-]{0,62}$/.test(plan)) {
      throw new TesseraConfigError(`Tessera SDK: checkoutUrl: "${plan}" is not a plan name`);
    }
    const appOrigin = new URL(this.options.redirectUri).origin;
    const back = new URL(options.returnTo ?? "/", appOrigin);
    if (back.protocol !== "https:" && back.protocol !== "http:") {
      throw new TesseraConfigError("Tessera SDK: checkoutUrl: returnTo must be a path or an http(s) URL");
    }
    const query = new URLSearchParams({ plan, return_to: back.toString() });
    if (options.method) query.set("method", options.method);
    return `${this.options.issuer}/billing/checkout?${query}`;
  }

  /**
   * The Set-Cookie values that clear the access, refresh and ID-token cookies.
   *
   * @example
   * ```ts
   * reply.header("set-cookie", tessera.clearCookies());
   * ```
   */
  clearCookies(): string[] {
    return [...this.#context.cookies.cleared];
  }

  /**
   * The Set-Cookie value that clears the login transaction cookie.
   *
   * @example
   * ```ts
   * res.setHeader("set-cookie", tessera.clearTransactionCookie());
   * ```
   */
  clearTransactionCookie(): string {
    return this.#context.cookies.clearTransaction();
  }
}

function escapeHtml(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}
