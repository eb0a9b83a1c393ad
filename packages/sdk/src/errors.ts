/**
 * Every error the SDK raises on bad input from the network (a tampered cookie, a wrong state, a refused refresh) is a
 * {@link TesseraError} with one of these stable codes, so an app can `switch` on `error.code`. Misuse by the app's
 * programmer (a short secret, a bad option) throws {@link TesseraConfigError} at start-up instead.
 *
 * @example
 * ```ts
 * errorCodes.SESSION_REVOKED.status; // 401
 * Object.keys(errorCodes); // every stable code, e.g. for documentation
 * ```
 */
export const errorCodes = {
  /** No access JWT and no refresh token: the request is anonymous. */
  UNAUTHENTICATED: { status: 401, message: "Sign-in required." },
  /** The access JWT is past its `exp` (and could not be refreshed on this request). */
  ACCESS_TOKEN_EXPIRED: { status: 401, message: "The access token has expired." },
  /** The access JWT is malformed, tampered with, signed with another secret or another algorithm. */
  ACCESS_TOKEN_INVALID: { status: 401, message: "The access token is invalid." },
  /** The access JWT belongs to a session that was ended (back-channel logout or local sign-out). */
  SESSION_REVOKED: { status: 401, message: "The session has ended." },
  /** The revoked-session store (e.g. Redis) could not be asked; the request is refused until it answers again. */
  SESSION_CHECK_FAILED: { status: 503, message: "Your session could not be checked right now; please try again." },
  /** Tessera refused the refresh token (revoked, reused, expired session) or could not be reached. */
  REFRESH_FAILED: { status: 401, message: "The session could not be renewed." },
  /**
   * A sign-out POST or a WebSocket upgrade came from a page of another origin (its `Origin` header is not one of the
   * app's `origins`): refused, and the request's cookies are not used.
   */
  CROSS_ORIGIN_REQUEST: { status: 403, message: "This request came from another site." },
  /** The signed-in user lacks the permission the route requires. */
  FORBIDDEN: { status: 403, message: "You do not have permission to do this." },
  /** The callback arrived without the login transaction cookie (expired, other browser, cookies blocked). */
  LOGIN_STATE_MISSING: { status: 400, message: "The sign-in attempt expired; please sign in again." },
  /** The callback's `state` does not match the one this browser started with. */
  STATE_MISMATCH: { status: 400, message: "The sign-in response does not match this browser's sign-in attempt." },
  /** The ID token's `nonce` does not match the one this browser started with. */
  NONCE_MISMATCH: { status: 400, message: "The sign-in response does not match this browser's sign-in attempt." },
  /** The callback's `iss` parameter names another issuer (mix-up attack defence, RFC 9207). */
  ISSUER_MISMATCH: { status: 400, message: "The sign-in response came from an unexpected issuer." },
  /** Tessera answered the authorization request with an error (e.g. `access_denied`, `login_required`). */
  AUTHORIZATION_DENIED: { status: 400, message: "Sign-in was not completed." },
  /** The callback is missing `code` or `state`, or carries malformed values. */
  CALLBACK_INVALID: { status: 400, message: "The sign-in response is malformed." },
  /** The ID token failed verification (signature via JWKS, algorithm, `iss`, `aud`, `exp`, `sid`). */
  ID_TOKEN_INVALID: { status: 400, message: "The sign-in response could not be verified." },
  /** Tessera's /token endpoint refused the code exchange or answered something unexpected. */
  TOKEN_EXCHANGE_FAILED: { status: 502, message: "The sign-in could not be completed." },
  /** A back-channel logout token failed verification. */
  LOGOUT_TOKEN_INVALID: { status: 400, message: "The logout token is invalid." },
  /** A webhook's signature is missing or wrong, or its body is not a Tessera event. */
  WEBHOOK_SIGNATURE_INVALID: { status: 400, message: "The webhook signature is invalid." },
  /** A webhook's `webhook-timestamp` is outside the tolerance window (a replay, or a badly wrong clock). */
  WEBHOOK_TIMESTAMP_INVALID: { status: 400, message: "The webhook timestamp is too old or in the future." },
  /** A webhook whose `webhook-id` was already handled: answer 2xx so Tessera stops retrying, and do nothing. */
  WEBHOOK_REPLAYED: { status: 200, message: "This webhook was already handled." },
  /** Tessera's discovery document or JWKS could not be fetched or is inconsistent. */
  ISSUER_UNAVAILABLE: { status: 503, message: "The identity provider is unavailable." },
} as const satisfies Record<string, { status: number; message: string }>;

/**
 * The union of stable SDK error codes.
 *
 * @example
 * ```ts
 * function explain(code: TesseraErrorCode): string {
 *   return code === "FORBIDDEN" ? "ask an admin" : "please sign in again";
 * }
 * ```
 */
export type TesseraErrorCode = keyof typeof errorCodes;

/**
 * An error caused by input from the network. `code` is stable, `status` is the HTTP status an adapter answers with,
 * `message` is safe to show to a user (it never contains a token or secret).
 *
 * @example
 * ```ts
 * try {
 *   await tessera.callback({ url: req.url!, cookieHeader: req.headers.cookie });
 * } catch (error) {
 *   if (error instanceof TesseraError && error.code === "STATE_MISMATCH") {
 *     // start a fresh sign-in
 *   }
 * }
 * ```
 */
export class TesseraError extends Error {
  override readonly name = "TesseraError";
  readonly code: TesseraErrorCode;
  readonly status: number;
  /** For AUTHORIZATION_DENIED / TOKEN_EXCHANGE_FAILED / REFRESH_FAILED: the OAuth `error` value Tessera returned. */
  readonly oauthError: string | undefined;
  /** Tessera's `error_description` with `oauthError`, for logs (never contains a token). Prose: never match on it. */
  readonly oauthErrorDescription: string | undefined;
  /**
   * Tessera's `tessera_code` beside `oauthError`, when it sent one: a stable name for an outcome the RFC `error` value
   * alone does not tell apart (e.g. `REFRESH_ROTATED_CONCURRENTLY` with `invalid_grant`).
   */
  readonly tesseraCode: string | undefined;

  constructor(
    code: TesseraErrorCode,
    options: {
      message?: string;
      oauthError?: string;
      oauthErrorDescription?: string;
      tesseraCode?: string;
      cause?: unknown;
    } = {},
  ) {
    super(options.message ?? errorCodes[code].message, options.cause === undefined ? {} : { cause: options.cause });
    this.code = code;
    this.status = errorCodes[code].status;
    this.oauthError = options.oauthError;
    this.oauthErrorDescription = options.oauthErrorDescription;
    this.tesseraCode = options.tesseraCode;
  }

  /** The same as `status`, under the name Fastify's and Express's default error handlers read. */
  get statusCode(): number {
    return this.status;
  }

  /** The JSON body adapters send: `{ code, message }`. */
  toJSON(): { code: TesseraErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/**
 * Thrown at start-up when the SDK is configured wrongly (a secret under 32 bytes, an issuer that is not a URL, ...).
 * The message names the option and says how to fix it.
 *
 * @example
 * ```ts
 * try {
 *   createTessera({ issuer, clientId, clientSecret, appSecret: "short", redirectUri, cookies: { secure: true } });
 * } catch (error) {
 *   if (error instanceof TesseraConfigError) console.error(error.message); // "appSecret: must be at least 32 bytes ..."
 * }
 * ```
 */
export class TesseraConfigError extends TypeError {
  override readonly name = "TesseraConfigError";
  readonly code = "SDK_CONFIG_INVALID" as const;
}
