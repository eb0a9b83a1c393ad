/**
 * RFC 6749 / 6750 / OIDC error values. OAuth endpoints answer with these (never the JSON catalog): an OIDC client
 * library switches on `error`, and `error_description` is for the developer reading the response.
 */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_response_type"
  | "invalid_scope"
  | "access_denied"
  | "login_required"
  | "consent_required"
  | "interaction_required"
  | "invalid_token"
  | "insufficient_scope"
  | "slow_down"
  | "server_error"
  | "temporarily_unavailable";

/**
 * Outcomes a client must act on that the RFC `error` value alone does not tell apart. Sent as `tessera_code` beside
 * `error`, so a client switches on a code, never on the English of `error_description`.
 */
export type TesseraOAuthCode = "REFRESH_ROTATED_CONCURRENTLY";

/** An error meant for the OAuth client: `error`, `error_description`, HTTP status and extra headers. */
export class OAuthError extends Error {
  override name = "OAuthError";
  /** Set on outcomes a client must tell apart from others with the same `error` (see TesseraOAuthCode). */
  tesseraCode: TesseraOAuthCode | undefined;
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = error === "invalid_client" || error === "invalid_token" ? 401 : 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }

  withHeaders(headers: Record<string, string>): OAuthError {
    const copy = new OAuthError(this.error, this.description, this.status, { ...this.headers, ...headers });
    copy.tesseraCode = this.tesseraCode;
    return copy;
  }

  withCode(code: TesseraOAuthCode): OAuthError {
    this.tesseraCode = code;
    return this;
  }
}

/**
 * An /authorize or /logout request that cannot be answered through a redirect (unknown client, unregistered
 * redirect URI, bad id_token_hint): it is shown to the user as an error page with status 400, and nothing redirects.
 */
export class OAuthPageError extends Error {
  override name = "OAuthPageError";
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
  ) {
    super(description);
  }
}
