/**
 * Every error code Tessera's JSON API can answer with, its HTTP status and a human message.
 * Codes are stable: clients switch on them. A retired code is never reused for another meaning.
 * OAuth/OIDC endpoints do not use this catalog: they answer with RFC 6749/6750 `error` values.
 */
export const errorCatalog = {
  // Generic
  VALIDATION_FAILED: { status: 400, message: "Some fields are missing or invalid." },
  MALFORMED_BODY: { status: 400, message: "The request body could not be parsed." },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "This content type is not accepted here." },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large." },
  NOT_FOUND: { status: 404, message: "Nothing is here." },
  METHOD_NOT_ALLOWED: { status: 405, message: "This method is not allowed here." },
  RATE_LIMITED: { status: 429, message: "Too many requests. Try again later." },
  INTERNAL_ERROR: { status: 500, message: "Something went wrong on our side." },
  DATABASE_UNAVAILABLE: { status: 503, message: "The database is not reachable." },
  MIGRATIONS_PENDING: { status: 503, message: "Database migrations have not been applied." },
  SHUTTING_DOWN: { status: 503, message: "The server is shutting down." },
  CSRF_INVALID: {
    status: 403,
    message: "The form expired or was not sent from this site. Reload the page and try again.",
  },

  // Authentication and accounts
  UNAUTHENTICATED: { status: 401, message: "Sign in to continue." },
  FORBIDDEN: { status: 403, message: "You are not allowed to do this." },
  INVALID_CREDENTIALS: { status: 401, message: "The email or password is incorrect." },
  ACCOUNT_DISABLED: { status: 403, message: "This account is disabled." },
  EMAIL_NOT_VERIFIED: { status: 403, message: "Verify your email address before signing in." },
  WEAK_PASSWORD: { status: 400, message: "Choose a stronger password." },
  INVALID_TOKEN: { status: 400, message: "This link is invalid or has expired." },
  SESSION_NOT_FOUND: { status: 404, message: "That session does not exist or has already ended." },
  ACCESS_TOKEN_EXPIRED: { status: 401, message: "The access token has expired." },
  IP_SUSPENDED: { status: 429, message: "Too many failed sign-ins from this network. Try again later." },
  ACCOUNT_LOCKED: { status: 429, message: "Too many failed sign-ins for this account. Try again later." },
  LOGIN_THROTTLED: { status: 429, message: "Too many failed attempts. Wait a moment before trying again." },
  MFA_ALREADY_ENABLED: { status: 409, message: "Two-step verification is already on for this account." },
  MFA_NOT_ENABLED: { status: 409, message: "Two-step verification is not on for this account." },
  MFA_CHALLENGE_EXPIRED: { status: 401, message: "This sign-in expired. Enter your email and password again." },
  MFA_REQUIRED: { status: 401, message: "Enter the code from your authenticator app." },
  INVALID_OTP: { status: 401, message: "That code is not valid." },

  // Admin and clients
  CLIENT_NOT_FOUND: { status: 404, message: "No client with that id." },
  USER_NOT_FOUND: { status: 404, message: "No account with that id." },
  INVALID_REDIRECT_URI: {
    status: 400,
    message: "Redirect URIs must be https (http only for loopback), without fragments or wildcards.",
  },
  ADMIN_EXISTS: { status: 409, message: "An admin account already exists." },
  /** Wrong, unknown or disabled client credentials; OAuth endpoints answer it as `invalid_client`. */
  INVALID_CLIENT: { status: 401, message: "Client authentication failed." },
  /** A JWT that fails verification (signature, alg, iss, aud, typ, nbf, malformed). */
  TOKEN_INVALID: { status: 401, message: "The token is invalid." },
  TOKEN_EXPIRED: { status: 401, message: "The token has expired." },
  CONFLICT: { status: 409, message: "That conflicts with the current state." },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalog;
