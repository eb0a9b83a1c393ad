import { createHash, timingSafeEqual } from "node:crypto";
import type { JWTPayload } from "jose";
import type { AccessClaims, AccessTokenCodec, ClaimsInput } from "./access-token.ts";
import type { SessionCookies } from "./cookies.ts";
import type { IssuerClient, TokenResponse } from "./issuer.ts";
import type { ResolvedOptions } from "./options.ts";
import { StaleClaims } from "./webhooks.ts";

/** Used only when Tessera's token response lacks `session_expires_at`. */
const FALLBACK_SESSION_SECONDS = 7 * 86400;

/**
 * What the client's parts (login flow, authenticator, refresher, logout) share: one per {@link TesseraClient}.
 * @internal
 *
 * @example
 * ```ts
 * const jwt = context.sign(claims, refreshToken); // internal
 * ```
 */
export class SdkContext {
  /** Users whose claims changed at Tessera (webhooks): their next request refreshes. */
  readonly staleClaims = new StaleClaims();

  constructor(
    readonly options: ResolvedOptions,
    readonly issuer: IssuerClient,
    readonly codec: AccessTokenCodec,
    readonly cookies: SessionCookies,
  ) {}

  nowSeconds(): number {
    return Math.floor(this.options.now() / 1000);
  }

  /** Signs the app's access JWT, bound (`rth`) to the refresh token it is issued with. */
  sign(claims: AccessClaims | ClaimsInput, refreshToken: string): string {
    const { aud: _aud, iat: _iat, exp: _exp, rth: _rth, ...rest } = claims as AccessClaims;
    return this.codec.sign(
      { ...rest, rth: refreshBinding(refreshToken) },
      this.nowSeconds(),
      this.options.accessTokenTtlSeconds,
    );
  }

  /**
   * Builds access-JWT claims. With a verified ID token (`idToken`), its profile and authorization claims are the whole
   * truth: a role Tessera no longer lists is gone, not carried over from the previous access JWT. Without one (an OP
   * that returns no ID token on refresh) they are the previous access JWT's. `sid` and `sxp` fall back to the previous
   * claims either way (a refreshed ID token need not repeat them), and `sub` must never change.
   */
  claimsFrom(
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
      sxp: response.session_expires_at ?? previous?.sxp ?? this.nowSeconds() + FALLBACK_SESSION_SECONDS,
    };
    if (typeof source.email === "string") claims.email = source.email;
    if (typeof source.email_verified === "boolean") claims.email_verified = source.email_verified;
    if (typeof source.name === "string") claims.name = source.name;
    for (const key of this.options.extraClaims) if (source[key] !== undefined) claims[key] = source[key];
    return claims;
  }
}

/**
 * The `rth` claim: the first 128 bits of SHA-256 of the refresh token the access JWT was issued with (a one-way value,
 * so the JWT reveals nothing usable). Claims of an access JWT are trusted during a refresh only when it is bound to
 * the refresh token presented with it, so one user's access cookie can never lend its identity to another user's
 * refresh token.
 * @internal
 *
 * @example
 * ```ts
 * const bound = claims.rth === refreshBinding(refreshToken);
 * ```
 */
export function refreshBinding(refreshToken: string): string {
  return createHash("sha256").update(refreshToken).digest().subarray(0, 16).toString("base64url");
}

/**
 * Compares two strings in constant time (through SHA-256, so their lengths do not leak either).
 * @internal
 *
 * @example
 * ```ts
 * if (!constantTimeEqual(state, transaction.state)) throw new TesseraError("STATE_MISMATCH");
 * ```
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}
