import type { TesseraUser } from "./access-token.ts";
import type { TesseraError } from "./errors.ts";

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
   * The request's `Origin` header, passed for WebSocket upgrades (`authInputFrom` does): when it names another origin than
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

/**
 * What {@link TesseraClient.login} takes: where to continue after sign-in (kept only if it is a same-origin path),
 * `prompt` (`none`: a silent check for an existing Tessera session; `login`: ask for the password again), and an
 * optional `loginHint` (the email to pre-fill).
 *
 * @example
 * ```ts
 * const input: LoginInput = { returnTo: "/cart", prompt: "none" };
 * const { url, setCookies } = await tessera.login(input);
 * ```
 */
export interface LoginInput {
  returnTo?: unknown;
  prompt?: "none" | "login" | "consent";
  loginHint?: string;
}
