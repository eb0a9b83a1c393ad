import { parseCookie } from "cookie";
import type { SdkContext } from "./context.ts";
import { TesseraError } from "./errors.ts";
import type { LogoutResult, SessionRevokedEvent } from "./types.ts";

const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";

/**
 * Ending sessions: the local sign-out with RP-initiated logout at Tessera, Tessera's back-channel logout, the
 * revoked-session store, and the listeners told about each revocation.
 * @internal
 *
 * @example
 * ```ts
 * const sessions = new Logout(context); // internal; apps call tessera.logout() / tessera.handleBackchannelLogout()
 * ```
 */
export class Logout {
  readonly #context: SdkContext;
  readonly #listeners = new Set<(event: SessionRevokedEvent) => void>();

  constructor(context: SdkContext) {
    this.#context = context;
  }

  async logout(input: { cookieHeader?: string | undefined }): Promise<LogoutResult> {
    const { options, codec, issuer, cookies: sdkCookies } = this.#context;
    const cookies = input.cookieHeader ? parseCookie(input.cookieHeader) : {};
    const access = cookies[options.names.access];
    const verified = access ? codec.verify(access, this.#context.nowSeconds()) : undefined;
    if (verified && verified.status !== "invalid") {
      // A store that fails (Redis down) must not stop the sign-out: the cookies are still cleared, the refresh token
      // revoked, and Tessera's back-channel call records the revocation again once the store is back.
      await this.revokeSession(verified.claims.sid, verified.claims.sub, "logout").catch(() => undefined);
    }
    const refreshToken = cookies[options.names.refresh];
    if (refreshToken) await issuer.revokeRefreshToken(refreshToken);

    let url = options.postLogoutRedirectUri ?? "/";
    const metadata = await issuer.metadata().catch(() => undefined);
    if (metadata?.end_session_endpoint) {
      const end = new URL(metadata.end_session_endpoint);
      const idToken = cookies[options.names.idToken];
      if (idToken && idToken.length <= 16384) end.searchParams.set("id_token_hint", idToken);
      end.searchParams.set("client_id", options.clientId);
      if (options.postLogoutRedirectUri) {
        // No `state`: the SDK would never check it, and Tessera would append it to the app's URL (`/?state=…`).
        end.searchParams.set("post_logout_redirect_uri", options.postLogoutRedirectUri);
      }
      url = end.toString();
    }
    return { url, setCookies: [...sdkCookies.cleared, sdkCookies.clearTransaction()] };
  }

  async handleBackchannelLogout(input: { logoutToken: unknown }): Promise<SessionRevokedEvent> {
    const token = input.logoutToken;
    if (typeof token !== "string" || token.length === 0 || token.length > 16384) {
      throw new TesseraError("LOGOUT_TOKEN_INVALID");
    }
    const payload = await this.#context.issuer.verifyJwt(token, "LOGOUT_TOKEN_INVALID", {
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

  async revokeSession(
    sessionId: string,
    userId: string | undefined,
    reason: SessionRevokedEvent["reason"],
  ): Promise<SessionRevokedEvent> {
    const { options } = this.#context;
    // Long enough to outlive every access JWT of the session; after that a refresh fails at Tessera anyway.
    const ttl = Math.max(600, options.accessTokenTtlSeconds * 2);
    await options.revokedSessions.add(sessionId, ttl);
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

  onSessionRevoked(listener: (event: SessionRevokedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
