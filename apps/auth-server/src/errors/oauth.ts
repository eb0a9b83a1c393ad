import { AppError } from "./app-error.ts";
import { errorCatalog, type OAuthErrorCode, type TesseraOAuthCode } from "./catalog.ts";

/**
 * An error meant for an OAuth client: a catalog error whose code is an RFC `error` value, answered as `error`,
 * `error_description` (and `tessera_code` when set) by http/errors.ts `sendOAuthError`. The status defaults to the
 * catalog's; extra headers (WWW-Authenticate, Retry-After) travel with it.
 */
export class OAuthError extends AppError {
  override name = "OAuthError";
  /** Set on outcomes a client must tell apart from others with the same `error` (see tesseraOAuthCodes). */
  tesseraCode: TesseraOAuthCode | undefined;
  /** Machine-readable extension fields beside `error` (RFC 6749 5.2 allows more members), e.g. the documents to accept. */
  extensions: Record<string, unknown> | undefined;
  declare readonly headers: Record<string, string>;
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    status: number = errorCatalog[error].status,
    headers: Record<string, string> = {},
  ) {
    super(error, description, undefined, headers, status);
  }

  withHeaders(headers: Record<string, string>): OAuthError {
    const copy = new OAuthError(this.error, this.description, this.status, { ...this.headers, ...headers });
    copy.tesseraCode = this.tesseraCode;
    copy.extensions = this.extensions;
    return copy;
  }

  withExtensions(fields: Record<string, unknown>): OAuthError {
    this.extensions = { ...this.extensions, ...fields };
    return this;
  }

  withCode(code: TesseraOAuthCode): OAuthError {
    this.tesseraCode = code;
    return this;
  }
}

/**
 * An /authorize or /logout request that cannot be answered through a redirect (unknown client, unregistered
 * redirect URI, bad id_token_hint): it is shown to the user as the HTML error page with status 400, and nothing
 * redirects.
 */
export class OAuthPageError extends OAuthError {
  override name = "OAuthPageError";
  constructor(error: OAuthErrorCode, description: string) {
    super(error, description, 400);
  }
}

/**
 * The one translation from the catalog to OAuth: an OAuth error as it is; any other catalog error as the RFC entry
 * its `oauth` field names (keeping its status, message and headers), or 400 invalid_request when it has none (RFC
 * 6749 5.2: a request the endpoint cannot process is malformed, whatever the framework called it).
 */
export function toOAuthError(error: AppError): OAuthError {
  if (error instanceof OAuthError) return error;
  const entry = errorCatalog[error.code];
  const oauth = "oauth" in entry ? entry.oauth : undefined;
  if (!oauth) return new OAuthError("invalid_request", error.message, 400, error.headers ?? {});
  return new OAuthError(oauth, error.message, error.status, error.headers ?? {});
}
