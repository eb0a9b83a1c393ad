import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { parseCookie, stringifySetCookie } from "cookie";
import type { JWTPayload } from "jose";
import {
  type AccessClaims,
  AccessTokenCodec,
  type ClaimsInput,
  type TesseraUser,
  toUser,
  type VerifyResult,
} from "./access-token.ts";
import { TesseraError } from "./errors.ts";
import { IssuerClient, type TokenResponse } from "./issuer.ts";
import { type CookieNames, type ResolvedOptions, resolveOptions, type TesseraOptions } from "./options.ts";
import { safeReturnTo } from "./return-to.ts";
import { deriveKey, seal, unseal } from "./seal.ts";

/**
 * What identifies a request: its Cookie header and/or an `Authorization: Bearer <access JWT>` header.
 *
 * @example
 * ```ts
 * const input: AuthInput = { cookieHeader: req.headers.cookie, authorization: req.headers.authorization };
 * const { user } = await tessera.authenticate(input);
 * ```
 */
export interface AuthInput {
  cookieHeader?: string | undefined;
  authorization?: string | undefined;
  /**
   * Whether an expired access JWT may be renewed on this request (default true). Must be false when the response
   * cannot carry Set-Cookie (a WebSocket upgrade): a rotated refresh token the browser never receives would break
   * its chain.
   */
  allowRefresh?: boolean;
  /**
   * The request's `Origin` header, passed for WebSocket upgrades (the adapters do): when it names another origin than
   * the app's `origins`, the cookies are not used and the answer is CROSS_ORIGIN_REQUEST (cross-site WebSocket
   * hijacking). A bearer token is not ambient, so it is accepted from any origin.
   */
  origin?: string | undefined;
}

/**
 * The outcome of authenticating a request. `user` is null for an anonymous request, with `error` saying why
 * (UNAUTHENTICATED, ACCESS_TOKEN_EXPIRED, ACCESS_TOKEN_INVALID, SESSION_REVOKED, REFRESH_FAILED). `setCookies` are
 * Set-Cookie header values the response must carry (renewed tokens, or cleared cookies after a failed refresh).
 *
 * @example
 * ```ts
 * const result: AuthResult = await tessera.authenticate({ cookieHeader: req.headers.cookie });
 * if (result.setCookies.length) res.setHeader("set-cookie", [...result.setCookies]);
 * if (!result.user) console.log(result.error?.code); // e.g. "ACCESS_TOKEN_EXPIRED"
 * ```
 */
export interface AuthResult {
  readonly user: TesseraUser | null;
  readonly error: TesseraError | null;
  readonly setCookies: readonly string[];
}

/**
 * A back-channel logout or local sign-out of one Tessera session.
 *
 * @example
 * ```ts
 * tessera.onSessionRevoked((event: SessionRevokedEvent) => {
 *   log.info({ sid: event.sessionId, reason: event.reason }, "session ended");
 * });
 * ```
 */
export interface SessionRevokedEvent {
  sessionId: string;
  userId: string | undefined;
  reason: "backchannel_logout" | "logout";
}

/**
 * The RP-initiated logout redirect and the cookies to clear.
 *
 * @example
 * ```ts
 * const { url, setCookies }: LogoutResult = await tessera.logout({ cookieHeader: req.headers.cookie });
 * ```
 */
export interface LogoutResult {
  url: string;
  setCookies: string[];
}

/**
 * The authorization redirect and the login transaction cookie to set.
 *
 * @example
 * ```ts
 * const { url, setCookies }: LoginResult = await tessera.login({ returnTo: "/cart" });
 * ```
 */
export interface LoginResult {
  url: string;
  setCookies: string[];
}

/**
 * A completed sign-in: the user, the same-origin path to continue at, and the cookies to set.
 *
 * @example
 * ```ts
 * const { user, returnTo, setCookies }: CallbackResult = await tessera.callback({ url: req.url!, cookieHeader: req.headers.cookie });
 * ```
 */
export type CallbackResult =
  | { user: TesseraUser; returnTo: string; setCookies: string[] }
  /**
   * A silent sign-in (`prompt: "none"`) found no Tessera session (`login_required` and the like): not an error, the
   * visitor simply stays anonymous and continues at `returnTo`.
   */
  | { user: null; returnTo: string; setCookies: string[] };

const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";
const TRANSACTION_TTL_SECONDS = 600;
/** Used only when Tessera's token response lacks `session_expires_at`. */
const FALLBACK_SESSION_SECONDS = 7 * 86400;
const NO_COOKIES: readonly string[] = Object.freeze([]);
/** Tessera's `tessera_code` for a refresh token rotated moments ago by another request (its grace window). */
const CONCURRENT_ROTATION = "REFRESH_ROTATED_CONCURRENTLY";
const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;

interface Transaction {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  expiresAt: number;
  /** Started with prompt=none: a "sign-in needed" answer is an anonymous visitor, not a failure. */
  silent?: boolean;
}

/** OIDC Core 3.1.2.6: what a prompt=none request answers when the user would have to interact. */
const SILENT_FAILURES = new Set([
  "login_required",
  "interaction_required",
  "consent_required",
  "account_selection_required",
]);

type RefreshOutcome =
  | { ok: true; accessJwt: string; refreshToken: string; idToken?: string }
  /**
   * `transient`: Tessera was unreachable or failed (5xx), so the refresh token was not rotated and stays usable.
   * `concurrent`: another process rotated this token moments ago (Tessera's grace window): the chain is alive and the
   * browser is receiving the successor from that process's response.
   */
  | { ok: false; transient: boolean; concurrent: boolean; error: TesseraError };

/**
 * The framework-neutral core. Adapters (`@tessera/sdk/fastify`, `@tessera/sdk/node`) call it with raw header values
 * and write its Set-Cookie values and redirects; any other framework can do the same.
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
 * and the revoked-session store.
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
  readonly #issuer: IssuerClient;
  readonly #codec: AccessTokenCodec;
  readonly #transactionKey: Buffer;
  readonly #inflight = new Map<string, Promise<RefreshOutcome>>();
  readonly #recent = new Map<string, { outcome: RefreshOutcome; until: number }>();
  readonly #listeners = new Set<(event: SessionRevokedEvent) => void>();
  readonly #cleared: readonly string[];

  constructor(options: TesseraOptions) {
    const o = resolveOptions(options);
    this.options = o;
    this.cookieNames = Object.freeze({ ...o.names });
    this.#issuer = new IssuerClient({
      issuer: o.issuer,
      clientId: o.clientId,
      clientSecret: o.clientSecret,
      authMethod: o.tokenEndpointAuthMethod,
      idTokenAlgorithms: o.idTokenAlgorithms,
      httpTimeoutMs: o.httpTimeoutMs,
      fetch: o.fetch,
      now: o.now,
    });
    this.#codec = new AccessTokenCodec({
      secret: deriveKey(o.appSecret, "access-jwt"),
      audience: o.clientId,
      cacheSize: o.accessTokenCacheSize,
    });
    this.#transactionKey = deriveKey(o.appSecret, "login-transaction");
    this.#cleared = Object.freeze([
      this.#cookie(o.names.access, "", 0),
      this.#cookie(o.names.refresh, "", 0, o.refreshPath),
      this.#cookie(o.names.idToken, "", 0),
    ]);
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
    await this.#issuer.metadata();
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
  async login(
    input: { returnTo?: unknown; prompt?: "none" | "login" | "consent"; loginHint?: string } = {},
  ): Promise<LoginResult> {
    const metadata = await this.#issuer.metadata();
    const transaction: Transaction = {
      state: randomBytes(32).toString("base64url"),
      nonce: randomBytes(32).toString("base64url"),
      verifier: randomBytes(32).toString("base64url"),
      returnTo: safeReturnTo(input.returnTo),
      expiresAt: this.#nowSeconds() + TRANSACTION_TTL_SECONDS,
      ...(input.prompt === "none" ? { silent: true } : {}),
    };
    const url = new URL(metadata.authorization_endpoint);
    const params = url.searchParams;
    params.set("response_type", "code");
    params.set("client_id", this.options.clientId);
    params.set("redirect_uri", this.options.redirectUri);
    params.set("scope", this.options.scope);
    params.set("state", transaction.state);
    params.set("nonce", transaction.nonce);
    params.set("code_challenge", createHash("sha256").update(transaction.verifier).digest("base64url"));
    params.set("code_challenge_method", "S256");
    if (input.prompt) params.set("prompt", input.prompt);
    if (input.loginHint) params.set("login_hint", input.loginHint.slice(0, 320));
    const sealed = seal(this.#transactionKey, transaction);
    return {
      url: url.toString(),
      setCookies: [this.#cookie(this.options.names.transaction, sealed, TRANSACTION_TTL_SECONDS)],
    };
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
    const params = new URL(input.url, "http://callback.invalid").searchParams;
    const transaction = this.#openTransaction(input.cookieHeader);
    if (!transaction) throw new TesseraError("LOGIN_STATE_MISSING");
    const state = params.get("state");
    if (!state || !constantTimeEqual(state, transaction.state)) throw new TesseraError("STATE_MISMATCH");

    const metadata = await this.#issuer.metadata();
    const iss = params.get("iss");
    if (iss !== null ? iss !== this.options.issuer : metadata.authorization_response_iss_parameter_supported === true) {
      throw new TesseraError("ISSUER_MISMATCH");
    }
    const error = params.get("error");
    if (error && transaction.silent && SILENT_FAILURES.has(error)) {
      return { user: null, returnTo: transaction.returnTo, setCookies: [this.clearTransactionCookie()] };
    }
    if (error) throw new TesseraError("AUTHORIZATION_DENIED", { oauthError: error.slice(0, 100) });
    const code = params.get("code");
    if (!code || code.length > 512) throw new TesseraError("CALLBACK_INVALID");

    const tokens = await this.#issuer.token(
      {
        grant_type: "authorization_code",
        code,
        redirect_uri: this.options.redirectUri,
        code_verifier: transaction.verifier,
      },
      "TOKEN_EXCHANGE_FAILED",
    );
    if (!tokens.id_token || !tokens.refresh_token) {
      throw new TesseraError("TOKEN_EXCHANGE_FAILED", {
        message: "The identity provider returned no ID token or refresh token (is offline_access allowed?).",
      });
    }
    const idToken = await this.#issuer.verifyJwt(tokens.id_token, "ID_TOKEN_INVALID", {
      requiredClaims: ["sub", "sid", "exp"],
    });
    if (typeof idToken.nonce !== "string" || !constantTimeEqual(idToken.nonce, transaction.nonce)) {
      throw new TesseraError("NONCE_MISMATCH");
    }
    if (idToken.azp !== undefined && idToken.azp !== this.options.clientId) throw new TesseraError("ID_TOKEN_INVALID");
    const claims = this.#claimsFrom(idToken, undefined, tokens);
    if (!claims) throw new TesseraError("ID_TOKEN_INVALID");
    const accessJwt = this.#sign(claims, tokens.refresh_token);
    const verified = this.#codec.verify(accessJwt, this.#nowSeconds());
    if (verified.status !== "valid") throw new TesseraError("ID_TOKEN_INVALID");
    return {
      user: verified.user,
      returnTo: transaction.returnTo,
      setCookies: [
        ...this.#sessionCookies(accessJwt, tokens.refresh_token, tokens.id_token, claims.sxp),
        this.clearTransactionCookie(),
      ],
    };
  }

  /**
   * The adapters' entry point on every request: answers synchronously when no I/O is needed (a valid cached or
   * HMAC-checked access JWT, an anonymous request) and with a promise otherwise (a refresh, or an asynchronous
   * revoked-session store). Never throws and the promise never rejects.
   *
   * @example
   * ```ts
   * const result = tessera.authenticateRequest({ cookieHeader: req.headers.cookie });
   * const { user } = result instanceof Promise ? await result : result;
   * ```
   */
  authenticateRequest(input: AuthInput): AuthResult | Promise<AuthResult> {
    const bearer = input.authorization ? BEARER.exec(input.authorization)?.[1] : undefined;
    if (bearer === undefined && input.origin !== undefined && !this.isAllowedOrigin(input.origin)) {
      return { user: null, error: new TesseraError("CROSS_ORIGIN_REQUEST"), setCookies: NO_COOKIES };
    }
    // `header` is undefined for bearer requests: they have no cookie to read or renew.
    const header = bearer === undefined ? input.cookieHeader : undefined;
    const token = bearer ?? (header ? readCookie(header, this.options.names.access) : undefined);
    const now = this.#nowSeconds();
    const current = token ? this.#codec.verify(token, now) : undefined;
    if (current === undefined || current.status === "invalid") return this.#checked(input, header, current, now);

    // The revoked-session set is asked on every request, cache hit or not: a cached verification says nothing about
    // a logout that arrived since.
    let revoked: boolean | Promise<boolean>;
    try {
      revoked = this.options.revokedSessions.has(current.claims.sid);
    } catch (cause) {
      return this.#storeFailure(cause);
    }
    if (typeof revoked === "boolean") {
      return revoked
        ? this.#anonymous("SESSION_REVOKED", header !== undefined)
        : this.#checked(input, header, current, now);
    }
    return Promise.resolve(revoked).then(
      (yes) =>
        yes ? this.#anonymous("SESSION_REVOKED", header !== undefined) : this.#checked(input, header, current, now),
      (cause: unknown) => this.#storeFailure(cause),
    );
  }

  /**
   * The synchronous part of {@link TesseraClient.authenticateRequest}: the result when no I/O is needed, `undefined`
   * when the request needs {@link TesseraClient.authenticate} (a refresh, or an asynchronous revoked-session store).
   * Work it had to start (a refresh) is shared with the `authenticate` call that follows, not done twice.
   *
   * @example
   * ```ts
   * const result = tessera.tryAuthenticateSync({ cookieHeader: req.headers.cookie }) ??
   *   (await tessera.authenticate({ cookieHeader: req.headers.cookie }));
   * ```
   */
  tryAuthenticateSync(input: AuthInput): AuthResult | undefined {
    const result = this.authenticateRequest(input);
    return result instanceof Promise ? undefined : result;
  }

  /**
   * Authenticates a request: verifies the access JWT (cookie or bearer) and the revoked-session set; when the JWT has
   * expired or is about to, rotates the refresh token at Tessera (one refresh per token per process, however many
   * requests arrive together) and returns the renewed cookies. A refused refresh clears the cookies. Never throws.
   *
   * @example
   * ```ts
   * const { user, error, setCookies } = await tessera.authenticate({ cookieHeader: req.headers.cookie });
   * if (setCookies.length) res.setHeader("set-cookie", setCookies);
   * if (!user) return res.writeHead(401).end(error?.code);
   * ```
   */
  async authenticate(input: AuthInput): Promise<AuthResult> {
    return this.authenticateRequest(input);
  }

  /** After the revocation check: the verified user, an anonymous answer, or a refresh. */
  #checked(
    input: AuthInput,
    header: string | undefined,
    current: VerifyResult | undefined,
    now: number,
  ): AuthResult | Promise<AuthResult> {
    // The refresh cookie is looked up only when a refresh may be needed: not on the hot path of a fresh access JWT.
    const fresh = current?.status === "valid" && current.claims.exp - now > this.options.refreshBeforeExpirySeconds;
    const refreshToken =
      !fresh && input.allowRefresh !== false && header ? readCookie(header, this.options.names.refresh) : undefined;
    if (current?.status === "valid") {
      if (fresh || !refreshToken) return { user: current.user, error: null, setCookies: NO_COOKIES };
    } else if (!refreshToken) {
      if (!current) return this.#anonymous("UNAUTHENTICATED", false);
      return this.#anonymous(current.status === "expired" ? "ACCESS_TOKEN_EXPIRED" : "ACCESS_TOKEN_INVALID", false);
    }
    // Claims of an expired access JWT count only if it was issued together with this very refresh token: a request
    // may carry one user's (expired) access cookie next to another user's refresh token.
    const bound =
      current && current.status !== "invalid" && current.claims.rth === refreshBinding(refreshToken)
        ? current.claims
        : undefined;
    return this.#renew(refreshToken, current?.status === "valid" ? current : undefined, bound);
  }

  async #renew(
    refreshToken: string,
    valid: (VerifyResult & { status: "valid" }) | undefined,
    bound: AccessClaims | undefined,
  ): Promise<AuthResult> {
    const outcome = await this.#refresh(refreshToken, bound);
    if (!outcome.ok) {
      // Another instance of this app rotated the same token a moment ago (two requests of one browser raced across
      // processes). Tessera answers invalid_grant inside its grace window WITHOUT revoking anything: the session is
      // alive and the browser is getting the successor in the other response. So this request goes on with a valid
      // access JWT, or with the just-expired claims bound to this refresh token, and no cookie is touched, or this
      // response could erase the new ones.
      if (outcome.concurrent) {
        if (valid) return { user: valid.user, error: null, setCookies: NO_COOKIES };
        if (bound) return { user: toUser(bound), error: null, setCookies: NO_COOKIES };
        return { user: null, error: outcome.error, setCookies: NO_COOKIES };
      }
      // Tessera could not be reached: a still-valid access JWT keeps working; nothing is cleared.
      if (outcome.transient) {
        if (valid) return { user: valid.user, error: null, setCookies: NO_COOKIES };
        return { user: null, error: outcome.error, setCookies: NO_COOKIES };
      }
      return { user: null, error: outcome.error, setCookies: this.#cleared };
    }
    const verified = this.#codec.verify(outcome.accessJwt, this.#nowSeconds());
    if (verified.status !== "valid") return this.#anonymous("REFRESH_FAILED", true);
    // The session may have ended while the refresh was in flight, or the outcome is a recent one reused for a request
    // that carried no access cookie to check: ask the revoked-session set about the renewed token as well.
    let revoked: boolean;
    try {
      revoked = await this.options.revokedSessions.has(verified.claims.sid);
    } catch (cause) {
      return this.#storeFailure(cause);
    }
    if (revoked) return this.#anonymous("SESSION_REVOKED", true);
    return {
      user: verified.user,
      error: null,
      setCookies: this.#sessionCookies(outcome.accessJwt, outcome.refreshToken, outcome.idToken, verified.claims.sxp),
    };
  }

  /**
   * Authenticates a WebSocket upgrade request from its cookies or `Authorization: Bearer` header, without refreshing
   * (a 101 response cannot deliver renewed cookies). An expired access JWT yields ACCESS_TOKEN_EXPIRED: the page
   * should make one ordinary request (which refreshes) and reconnect.
   *
   * @example
   * ```ts
   * server.on("upgrade", async (req, socket, head) => {
   *   const { user } = await tessera.authenticateUpgrade({ headers: req.headers });
   *   if (!user) return socket.end("HTTP/1.1 401 Unauthorized\r\n\r\n");
   *   wss.handleUpgrade(req, socket, head, (ws) => track(user.sessionId, ws));
   * });
   * ```
   */
  async authenticateUpgrade(input: { headers: Record<string, string | string[] | undefined> }): Promise<AuthResult> {
    const { cookie, authorization, origin } = input.headers;
    return this.authenticate({
      cookieHeader: typeof cookie === "string" ? cookie : undefined,
      authorization: typeof authorization === "string" ? authorization : undefined,
      allowRefresh: false,
      origin: typeof origin === "string" ? origin : Array.isArray(origin) ? "null" : undefined,
    });
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
    return origin === undefined || this.options.origins.has(origin);
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
  async logout(input: { cookieHeader?: string | undefined }): Promise<LogoutResult> {
    const cookies = input.cookieHeader ? parseCookie(input.cookieHeader) : {};
    const access = cookies[this.options.names.access];
    const verified = access ? this.#codec.verify(access, this.#nowSeconds()) : undefined;
    if (verified && verified.status !== "invalid") {
      // A store that fails (Redis down) must not stop the sign-out: the cookies are still cleared, the refresh token
      // revoked, and Tessera's back-channel call records the revocation again once the store is back.
      await this.revokeSession(verified.claims.sid, verified.claims.sub, "logout").catch(() => undefined);
    }
    const refreshToken = cookies[this.options.names.refresh];
    if (refreshToken) await this.#issuer.revokeRefreshToken(refreshToken);

    const fallback = this.options.postLogoutRedirectUri ?? "/";
    let url = fallback;
    const metadata = await this.#issuer.metadata().catch(() => undefined);
    if (metadata?.end_session_endpoint) {
      const end = new URL(metadata.end_session_endpoint);
      const idToken = cookies[this.options.names.idToken];
      if (idToken && idToken.length <= 16384) end.searchParams.set("id_token_hint", idToken);
      end.searchParams.set("client_id", this.options.clientId);
      if (this.options.postLogoutRedirectUri) {
        end.searchParams.set("post_logout_redirect_uri", this.options.postLogoutRedirectUri);
        end.searchParams.set("state", randomBytes(16).toString("base64url"));
      }
      url = end.toString();
    }
    return { url, setCookies: [...this.#cleared, this.clearTransactionCookie()] };
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
  async handleBackchannelLogout(input: { logoutToken: unknown }): Promise<SessionRevokedEvent> {
    const token = input.logoutToken;
    if (typeof token !== "string" || token.length === 0 || token.length > 16384) {
      throw new TesseraError("LOGOUT_TOKEN_INVALID");
    }
    const payload = await this.#issuer.verifyJwt(token, "LOGOUT_TOKEN_INVALID", {
      typ: "logout+jwt",
      requiredClaims: ["exp", "jti", "events", "sid"],
    });
    const events = payload.events as Record<string, unknown> | undefined;
    const event = events && typeof events === "object" ? events[BACKCHANNEL_EVENT] : undefined;
    if (!event || typeof event !== "object" || Array.isArray(event)) throw new TesseraError("LOGOUT_TOKEN_INVALID");
    if ("nonce" in payload || typeof payload.sid !== "string" || payload.sid.length > 200) {
      throw new TesseraError("LOGOUT_TOKEN_INVALID");
    }
    return this.revokeSession(
      payload.sid,
      typeof payload.sub === "string" ? payload.sub : undefined,
      "backchannel_logout",
    );
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
  async revokeSession(
    sessionId: string,
    userId: string | undefined,
    reason: SessionRevokedEvent["reason"],
  ): Promise<SessionRevokedEvent> {
    // Long enough to outlive every access JWT of the session; after that a refresh fails at Tessera anyway.
    const ttl = Math.max(600, this.options.accessTokenTtlSeconds * 2);
    await this.options.revokedSessions.add(sessionId, ttl);
    const event: SessionRevokedEvent = { sessionId, userId, reason };
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A failing listener must not stop the others nor fail Tessera's back-channel call.
      }
    }
    return event;
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
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
    return [...this.#cleared];
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
    return this.#cookie(this.options.names.transaction, "", 0);
  }

  // ---------------------------------------------------------------------------------------------------------------

  #nowSeconds(): number {
    return Math.floor(this.options.now() / 1000);
  }

  #anonymous(
    code: "UNAUTHENTICATED" | "ACCESS_TOKEN_EXPIRED" | "ACCESS_TOKEN_INVALID" | "SESSION_REVOKED" | "REFRESH_FAILED",
    clear: boolean,
  ): AuthResult {
    return { user: null, error: new TesseraError(code), setCookies: clear ? this.#cleared : NO_COOKIES };
  }

  /**
   * The revoked-session store failed (e.g. Redis down): fail closed. The request is anonymous for now, with a 503
   * code, and no cookie is cleared, so the user is signed in again as soon as the store answers.
   */
  #storeFailure(cause: unknown): AuthResult {
    return { user: null, error: new TesseraError("SESSION_CHECK_FAILED", { cause }), setCookies: NO_COOKIES };
  }

  #cookie(name: string, value: string, maxAgeSeconds: number, path = "/"): string {
    return stringifySetCookie({
      name,
      value,
      maxAge: Math.max(0, Math.floor(maxAgeSeconds)),
      path,
      httpOnly: true,
      secure: this.options.secure,
      sameSite: "lax",
    });
  }

  #sessionCookies(
    accessJwt: string,
    refreshToken: string,
    idToken: string | undefined,
    sessionExpiresAt: number,
  ): string[] {
    // Every cookie lives as long as the Tessera session: the access JWT's own `exp` decides its validity, and keeping
    // the expired JWT lets the next request know its session id (for the revoked-session check) before refreshing.
    const maxAge = sessionExpiresAt - this.#nowSeconds();
    const cookies = [
      this.#cookie(this.options.names.access, accessJwt, maxAge),
      this.#cookie(this.options.names.refresh, refreshToken, maxAge, this.options.refreshPath),
    ];
    if (idToken) cookies.push(this.#cookie(this.options.names.idToken, idToken, maxAge));
    return cookies;
  }

  #openTransaction(cookieHeader: string | undefined): Transaction | null {
    const raw = cookieHeader ? parseCookie(cookieHeader)[this.options.names.transaction] : undefined;
    const value = unseal(this.#transactionKey, raw) as Partial<Transaction> | null;
    if (
      !value ||
      typeof value.state !== "string" ||
      typeof value.nonce !== "string" ||
      typeof value.verifier !== "string" ||
      typeof value.returnTo !== "string" ||
      typeof value.expiresAt !== "number" ||
      value.expiresAt <= this.#nowSeconds()
    ) {
      return null;
    }
    return { ...value, returnTo: safeReturnTo(value.returnTo), silent: value.silent === true } as Transaction;
  }

  /** Signs the app's access JWT, bound (`rth`) to the refresh token it is issued with. */
  #sign(claims: AccessClaims | ClaimsInput, refreshToken: string): string {
    const { aud: _aud, iat: _iat, exp: _exp, rth: _rth, ...rest } = claims as AccessClaims;
    return this.#codec.sign(
      { ...rest, rth: refreshBinding(refreshToken) },
      this.#nowSeconds(),
      this.options.accessTokenTtlSeconds,
    );
  }

  /**
   * Builds access-JWT claims. With a verified ID token (`idToken`), its profile and authorization claims are the whole
   * truth: a role Tessera no longer lists is gone, not carried over from the previous access JWT. Without one (an OP
   * that returns no ID token on refresh) they are the previous access JWT's. `sid` and `sxp` fall back to the previous
   * claims either way (a refreshed ID token need not repeat them), and `sub` must never change.
   */
  #claimsFrom(
    idToken: JWTPayload | undefined,
    previous: AccessClaims | undefined,
    response: TokenResponse,
  ): ClaimsInput | null {
    const sub = idToken ? idToken.sub : previous?.sub;
    const sid = typeof idToken?.sid === "string" ? idToken.sid : previous?.sid;
    if (typeof sub !== "string" || !sid) return null;
    if (previous && previous.sub !== sub) return null;
    const source: Record<string, unknown> = idToken ?? previous ?? {};
    const claims: ClaimsInput = {
      sub,
      sid,
      sxp: response.session_expires_at ?? previous?.sxp ?? this.#nowSeconds() + FALLBACK_SESSION_SECONDS,
    };
    if (typeof source.email === "string") claims.email = source.email;
    if (typeof source.email_verified === "boolean") claims.email_verified = source.email_verified;
    if (typeof source.name === "string") claims.name = source.name;
    for (const key of this.options.extraClaims) if (source[key] !== undefined) claims[key] = source[key];
    return claims;
  }

  /** Single-flight per refresh token: concurrent callers share one call; its outcome is reused briefly after. */
  #refresh(refreshToken: string, previous: AccessClaims | undefined): Promise<RefreshOutcome> {
    const nowMs = this.options.now();
    const recent = this.#recent.get(refreshToken);
    if (recent && recent.until > nowMs) return Promise.resolve(recent.outcome);
    const pending = this.#inflight.get(refreshToken);
    if (pending) return pending;
    const started = this.#doRefresh(refreshToken, previous)
      .then((outcome) => {
        // A transient failure (Tessera unreachable) is not remembered: the next request should try again.
        if (outcome.ok || !outcome.transient) this.#remember(refreshToken, outcome);
        return outcome;
      })
      .finally(() => this.#inflight.delete(refreshToken));
    this.#inflight.set(refreshToken, started);
    return started;
  }

  #remember(refreshToken: string, outcome: RefreshOutcome): void {
    if (this.options.refreshReuseSeconds === 0) return;
    const nowMs = this.options.now();
    for (const [key, entry] of this.#recent) if (entry.until <= nowMs) this.#recent.delete(key);
    if (this.#recent.size >= 10_000) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
    this.#recent.set(refreshToken, { outcome, until: nowMs + this.options.refreshReuseSeconds * 1000 });
  }

  async #doRefresh(refreshToken: string, previous: AccessClaims | undefined): Promise<RefreshOutcome> {
    if (refreshToken.length > 1024) {
      return { ok: false, transient: false, concurrent: false, error: new TesseraError("REFRESH_FAILED") };
    }
    let tokens: TokenResponse;
    try {
      tokens = await this.#issuer.token({ grant_type: "refresh_token", refresh_token: refreshToken }, "REFRESH_FAILED");
    } catch (error) {
      const oauthError = error instanceof TesseraError ? error.oauthError : undefined;
      const transient =
        oauthError === undefined ||
        /^http_5\d\d$/.test(oauthError) ||
        oauthError === "server_error" ||
        oauthError === "temporarily_unavailable";
      const description = error instanceof TesseraError ? (error.oauthErrorDescription ?? "") : "";
      const tesseraCode = error instanceof TesseraError ? error.tesseraCode : undefined;
      return {
        ok: false,
        transient,
        // Tessera's grace-window answer names itself in `tessera_code`; the English of error_description is never read.
        concurrent: oauthError === "invalid_grant" && tesseraCode === CONCURRENT_ROTATION,
        error: new TesseraError(
          "REFRESH_FAILED",
          oauthError === undefined
            ? { cause: error }
            : { oauthError, oauthErrorDescription: description, ...(tesseraCode ? { tesseraCode } : {}) },
        ),
      };
    }
    // From here on the old token is spent: any failure signs the user out (the new token cannot be trusted/used).
    try {
      let idToken: JWTPayload | undefined;
      if (tokens.id_token) {
        idToken = await this.#issuer.verifyJwt(tokens.id_token, "REFRESH_FAILED", { requiredClaims: ["sub"] });
        if (idToken.azp !== undefined && idToken.azp !== this.options.clientId)
          throw new TesseraError("REFRESH_FAILED");
      }
      const claims = this.#claimsFrom(idToken, previous, tokens);
      if (!claims) throw new TesseraError("REFRESH_FAILED");
      // Tessera rotates on every use; should a server not rotate, the presented token stays valid.
      const successor = tokens.refresh_token ?? refreshToken;
      const outcome: RefreshOutcome = { ok: true, accessJwt: this.#sign(claims, successor), refreshToken: successor };
      if (tokens.id_token) outcome.idToken = tokens.id_token;
      return outcome;
    } catch (error) {
      return {
        ok: false,
        transient: false,
        concurrent: false,
        error: new TesseraError("REFRESH_FAILED", { cause: error }),
      };
    }
  }
}

/**
 * Reads one cookie's raw value from a Cookie header without parsing the others. The hot path only needs the access
 * cookie, and a full parse (an object per request, every pair decoded) was measurable in bench/; the slow paths
 * (refresh, callback, logout) use the `cookie` package's parser. Our values are base64url/`tsr_` tokens, so no
 * percent-decoding is needed; a value that is not one simply fails verification.
 */
function readCookie(header: string, name: string): string | undefined {
  let from = 0;
  while (from < header.length) {
    const at = header.indexOf(name, from);
    if (at === -1) return undefined;
    const end = at + name.length;
    const before = at === 0 ? " " : header[at - 1];
    if ((before === " " || before === ";") && header[end] === "=") {
      const stop = header.indexOf(";", end + 1);
      return (stop === -1 ? header.slice(end + 1) : header.slice(end + 1, stop)).trim();
    }
    from = end;
  }
  return undefined;
}

/**
 * The `rth` claim: the first 128 bits of SHA-256 of the refresh token the access JWT was issued with (a one-way value,
 * so the JWT reveals nothing usable). Claims of an access JWT are trusted during a refresh only when it is bound to
 * the refresh token presented with it, so one user's access cookie can never lend its identity to another user's
 * refresh token.
 */
function refreshBinding(refreshToken: string): string {
  return createHash("sha256").update(refreshToken).digest().subarray(0, 16).toString("base64url");
}

function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}
