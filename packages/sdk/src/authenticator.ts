import { type AccessClaims, toUser, type VerifyResult } from "./access-token.ts";
import { refreshBinding, type SdkContext } from "./context.ts";
import { readCookie } from "./cookies.ts";
import { TesseraError } from "./errors.ts";
import { Refresher } from "./refresher.ts";
import type { AuthInput, AuthResult } from "./types.ts";

const NO_COOKIES: readonly string[] = Object.freeze([]);
const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;

type AnonymousCode =
  | "UNAUTHENTICATED"
  | "ACCESS_TOKEN_EXPIRED"
  | "ACCESS_TOKEN_INVALID"
  | "SESSION_REVOKED"
  | "REFRESH_FAILED";

/**
 * Authenticates requests: the access JWT (cookie or bearer), the revoked-session set, and a refresh when the JWT has
 * expired or is about to. Answers synchronously when no I/O is needed; never throws, and its promise never rejects.
 * @internal
 *
 * @example
 * ```ts
 * const authenticator = new Authenticator(context); // internal; apps call tessera.authenticate()
 * ```
 */
export class Authenticator {
  readonly #context: SdkContext;
  readonly #refresher: Refresher;

  constructor(context: SdkContext) {
    this.#context = context;
    this.#refresher = new Refresher(context);
  }

  isAllowedOrigin(origin: string | undefined): boolean {
    return origin === undefined || this.#context.options.origins.has(origin);
  }

  authenticate(input: AuthInput): AuthResult | Promise<AuthResult> {
    const { options, codec } = this.#context;
    const bearer = input.authorization ? BEARER.exec(input.authorization)?.[1] : undefined;
    if (bearer === undefined && input.origin !== undefined && !this.isAllowedOrigin(input.origin)) {
      return { user: null, error: new TesseraError("CROSS_ORIGIN_REQUEST"), setCookies: NO_COOKIES };
    }
    // `header` is undefined for bearer requests: they have no cookie to read or renew.
    const header = bearer === undefined ? input.cookieHeader : undefined;
    const token = bearer ?? (header ? readCookie(header, options.names.access) : undefined);
    const now = this.#context.nowSeconds();
    const current = token ? codec.verify(token, now) : undefined;
    if (current === undefined || current.status === "invalid") return this.#checked(input, header, current, now);

    // The revoked-session set is asked on every request, cache hit or not: a cached verification says nothing about
    // a logout that arrived since.
    let revoked: boolean | Promise<boolean>;
    try {
      revoked = options.revokedSessions.has(current.claims.sid);
    } catch (cause) {
      return storeFailure(cause);
    }
    if (typeof revoked === "boolean") {
      return revoked
        ? this.#anonymous("SESSION_REVOKED", header !== undefined)
        : this.#checked(input, header, current, now);
    }
    return Promise.resolve(revoked).then(
      (yes) =>
        yes ? this.#anonymous("SESSION_REVOKED", header !== undefined) : this.#checked(input, header, current, now),
      (cause: unknown) => storeFailure(cause),
    );
  }

  /** After the revocation check: the verified user, an anonymous answer, or a refresh. */
  #checked(
    input: AuthInput,
    header: string | undefined,
    current: VerifyResult | undefined,
    now: number,
  ): AuthResult | Promise<AuthResult> {
    const { options } = this.#context;
    // The refresh cookie is looked up only when a refresh may be needed: not on the hot path of a fresh access JWT.
    // A roles.changed/entitlements.changed webhook about the user makes an access JWT issued before it stale.
    const fresh =
      current?.status === "valid" &&
      current.claims.exp - now > options.refreshBeforeExpirySeconds &&
      !this.#context.staleClaims.isStale(current.claims.sub, current.claims.iat);
    const refreshToken =
      !fresh && input.allowRefresh !== false && header ? readCookie(header, options.names.refresh) : undefined;
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
    const { options, codec, cookies } = this.#context;
    const startedMs = options.now();
    const outcome = await this.#refresher.refresh(refreshToken, bound);
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
      return { user: null, error: outcome.error, setCookies: cookies.cleared };
    }
    const now = this.#context.nowSeconds();
    const verified = codec.verify(outcome.accessJwt, now);
    if (verified.status !== "valid") return this.#anonymous("REFRESH_FAILED", true);
    // The session may have ended while the refresh was in flight, or the outcome is a recent one reused for a request
    // that carried no access cookie to check: ask the revoked-session set about the renewed token as well.
    let revoked: boolean;
    try {
      revoked = await options.revokedSessions.has(verified.claims.sid);
    } catch (cause) {
      return storeFailure(cause);
    }
    if (revoked) return this.#anonymous("SESSION_REVOKED", true);
    this.#context.staleClaims.refreshed(verified.claims.sub, startedMs);
    return {
      user: verified.user,
      error: null,
      setCookies: cookies.session(outcome.accessJwt, outcome.refreshToken, outcome.idToken, verified.claims.sxp, now),
    };
  }

  #anonymous(code: AnonymousCode, clear: boolean): AuthResult {
    return {
      user: null,
      error: new TesseraError(code),
      setCookies: clear ? this.#context.cookies.cleared : NO_COOKIES,
    };
  }
}

/**
 * The revoked-session store failed (e.g. Redis down): fail closed. The request is anonymous for now, with a 503
 * code, and no cookie is cleared, so the user is signed in again as soon as the store answers.
 */
function storeFailure(cause: unknown): AuthResult {
  return { user: null, error: new TesseraError("SESSION_CHECK_FAILED", { cause }), setCookies: NO_COOKIES };
}
