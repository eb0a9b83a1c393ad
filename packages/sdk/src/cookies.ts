import { stringifySetCookie } from "cookie";
import type { ResolvedOptions } from "./options.ts";

/**
 * The SDK's Set-Cookie values: the session cookies (access JWT, refresh token, ID token), the login transaction
 * cookie, and the values that clear them. Every cookie is HttpOnly, SameSite=Lax, and Secure when configured.
 * @internal
 *
 * @example
 * ```ts
 * const cookies = new SessionCookies(resolveOptions(options)); // internal
 * res.setHeader("set-cookie", cookies.cleared);
 * ```
 */
export class SessionCookies {
  /** The Set-Cookie values that clear the access, refresh and ID-token cookies (frozen: shared by every answer). */
  readonly cleared: readonly string[];
  readonly #options: ResolvedOptions;

  constructor(options: ResolvedOptions) {
    this.#options = options;
    this.cleared = Object.freeze([
      this.cookie(options.names.access, "", 0),
      this.cookie(options.names.refresh, "", 0, options.refreshPath),
      this.cookie(options.names.idToken, "", 0),
    ]);
  }

  /** One Set-Cookie value with the SDK's attributes. */
  cookie(name: string, value: string, maxAgeSeconds: number, path = "/"): string {
    return stringifySetCookie({
      name,
      value,
      maxAge: Math.max(0, Math.floor(maxAgeSeconds)),
      path,
      httpOnly: true,
      secure: this.#options.secure,
      sameSite: "lax",
    });
  }

  /**
   * The session cookies. Every cookie lives as long as the Tessera session: the access JWT's own `exp` decides its
   * validity, and keeping the expired JWT lets the next request know its session id (for the revoked-session check)
   * before refreshing.
   */
  session(
    accessJwt: string,
    refreshToken: string,
    idToken: string | undefined,
    sessionExpiresAt: number,
    nowSeconds: number,
  ): string[] {
    const { names, refreshPath } = this.#options;
    const maxAge = sessionExpiresAt - nowSeconds;
    const cookies = [
      this.cookie(names.access, accessJwt, maxAge),
      this.cookie(names.refresh, refreshToken, maxAge, refreshPath),
    ];
    if (idToken) cookies.push(this.cookie(names.idToken, idToken, maxAge));
    return cookies;
  }

  /** The Set-Cookie value that clears the login transaction cookie. */
  clearTransaction(): string {
    return this.cookie(this.#options.names.transaction, "", 0);
  }
}

/**
 * Reads one cookie's raw value from a Cookie header without parsing the others. The hot path only needs the access
 * cookie, and a full parse (an object per request, every pair decoded) was measurable in bench/; the slow paths
 * (refresh, callback, logout) use the `cookie` package's parser. Our values are base64url/`tsr_` tokens, so no
 * percent-decoding is needed; a value that is not one simply fails verification.
 * @internal
 *
 * @example
 * ```ts
 * readCookie("theme=dark; shop-at=eyJ...", "shop-at"); // "eyJ..."
 * ```
 */
export function readCookie(header: string, name: string): string | undefined {
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
