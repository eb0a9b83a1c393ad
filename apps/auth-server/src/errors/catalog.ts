/**
 * The RFC 6749 / 6750 / OIDC Core `error` values, with their default HTTP status and a human message. OAuth endpoints
 * answer with these (`error`, `error_description`): an OIDC client library switches on `error`. Statuses: 401 for
 * invalid_client and invalid_token (RFC 6749 5.2, RFC 6750 3.1), 403 insufficient_scope, 429 slow_down, 500/503 for
 * the server's own trouble, 400 for everything else.
 */
const oauthErrors = {
  invalid_request: { status: 400, message: "The request is missing a parameter or is malformed." },
  invalid_client: { status: 401, message: "Client authentication failed." },
  invalid_grant: { status: 400, message: "The grant is invalid, expired or revoked." },
  unauthorized_client: { status: 400, message: "This client may not use this grant." },
  unsupported_grant_type: { status: 400, message: "This grant type is not supported." },
  unsupported_response_type: { status: 400, message: "This response type is not supported." },
  invalid_scope: { status: 400, message: "The requested scope is invalid." },
  access_denied: { status: 400, message: "The request was denied." },
  login_required: { status: 400, message: "The user is not signed in." },
  consent_required: { status: 400, message: "The user must approve this application." },
  interaction_required: { status: 400, message: "The user must interact with Tessera first." },
  invalid_token: { status: 401, message: "The access token is invalid." },
  insufficient_scope: { status: 403, message: "The access token lacks a required scope." },
  // RFC 8628 3.5 (device authorization grant): answered 400 like every token endpoint error
  authorization_pending: { status: 400, message: "The user has not yet approved or denied the request." },
  expired_token: { status: 400, message: "The device code has expired." },
  slow_down: { status: 429, message: "Too many requests. Try again later." },
  server_error: { status: 500, message: "Something went wrong on our side." },
  temporarily_unavailable: { status: 503, message: "The service is temporarily unavailable." },
  // Client kinds (#13 part A): DPoP (RFC 9449 5), revocation (RFC 7009 2.2.1), request objects (OIDC Core 6.1, 6.2)
  invalid_dpop_proof: { status: 400, message: "The DPoP proof is missing or invalid." },
  unsupported_token_type: { status: 400, message: "This token type cannot be revoked here." },
  request_not_supported: { status: 400, message: "The request parameter is not supported." },
  request_uri_not_supported: { status: 400, message: "The request_uri parameter is not supported." },
  // RFC 9449 8: the DPoP proof must carry the server's current nonce (sent in the DPoP-Nonce header)
  use_dpop_nonce: { status: 400, message: "Send the DPoP proof again with the server's nonce." },
} as const satisfies Record<string, { status: number; message: string }>;

/** An RFC 6749 / 6750 / OIDC `error` value (one of the catalog's OAuth entries). */
export type OAuthErrorCode = keyof typeof oauthErrors;

/**
 * Outcomes a client must act on that the RFC `error` value alone does not tell apart. Sent as `tessera_code` beside
 * `error` (in OAuth JSON and in error redirects), so a client switches on a code, never on the English of
 * `error_description`. Stable like the catalog codes.
 */
export const tesseraOAuthCodes = {
  /** invalid_grant on a refresh inside the grace window: use the newest refresh token, the session is fine. */
  REFRESH_ROTATED_CONCURRENTLY: "invalid_grant",
  /** access_denied at /authorize: the user refused on the consent page. */
  CONSENT_DENIED: "access_denied",
  /** access_denied at /authorize: acr_values asked for a second factor and the account has none turned on. */
  SECOND_FACTOR_NOT_ENROLLED: "access_denied",
  /** Direct sign-in (first-party clients): the account has a second factor; send the user to the hosted sign-in. */
  MFA_REQUIRED: "invalid_grant",
  /** Direct sign-in: the account is disabled by an admin. */
  ACCOUNT_DISABLED: "invalid_grant",
  /** Direct sign-in: the email must be verified first (ALLOW_UNVERIFIED_LOGIN=false). */
  EMAIL_NOT_VERIFIED: "invalid_grant",
  /** Direct sign-in, 429 with Retry-After: wait before trying again (failed sign-ins of this account). */
  LOGIN_THROTTLED: "slow_down",
  /** Direct sign-in, 429 with Retry-After: the account is locked after many failures (an email went to its owner). */
  ACCOUNT_LOCKED: "slow_down",
  /** Direct sign-in, 429 with Retry-After: this IP address is suspended after many failures. */
  IP_SUSPENDED: "slow_down",
  /**
   * Direct sign-in: the password is right, but the user has not accepted the current terms/privacy documents. The
   * answer lists them in `required_documents` ([{ kind: "terms" | "privacy", version, url }]); show them, then send
   * the sign-in again with `accept_terms_version` / `accept_privacy_version` naming each current version (an older
   * version named there gets this answer again).
   */
  TERMS_ACCEPTANCE_REQUIRED: "invalid_grant",
} as const satisfies Record<string, OAuthErrorCode>;

export type TesseraOAuthCode = keyof typeof tesseraOAuthCodes;

/**
 * The one catalog of errors: every error code Tessera can answer with, its HTTP status and a human message.
 * Codes are stable: clients switch on them. A retired code is never reused for another meaning.
 *
 * The JSON API answers the UPPER_CASE codes in its `{ error: { code, message, status } }` shape. OAuth endpoints
 * answer the lower-case RFC entries as `error`; an UPPER_CASE error raised on an OAuth endpoint is answered as the
 * RFC entry named by its `oauth` field, or invalid_request (400) when it has none.
 */
export const errorCatalog = {
  // Generic
  VALIDATION_FAILED: { status: 400, message: "Some fields are missing or invalid." },
  MALFORMED_BODY: { status: 400, message: "The request body could not be parsed." },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "This content type is not accepted here." },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is too large." },
  NOT_FOUND: { status: 404, message: "Nothing is here." },
  METHOD_NOT_ALLOWED: { status: 405, message: "This method is not allowed here." },
  RATE_LIMITED: { status: 429, message: "Too many requests. Try again later.", oauth: "slow_down" },
  INTERNAL_ERROR: { status: 500, message: "Something went wrong on our side.", oauth: "server_error" },
  DATABASE_UNAVAILABLE: { status: 503, message: "The database is not reachable.", oauth: "temporarily_unavailable" },
  MIGRATIONS_PENDING: { status: 503, message: "Database migrations have not been applied." },
  SHUTTING_DOWN: { status: 503, message: "The server is shutting down.", oauth: "temporarily_unavailable" },
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

  // Passkeys (WebAuthn)
  PASSKEY_CHALLENGE_EXPIRED: { status: 401, message: "This passkey request expired. Try again." },
  PASSKEY_INVALID: { status: 401, message: "That passkey could not be verified." },
  PASSKEY_COUNTER_MISMATCH: {
    status: 401,
    message: "That passkey answered with an old signature counter and was refused. It may have been copied.",
  },
  PASSKEY_NOT_FOUND: { status: 404, message: "No such passkey on your account." },
  PASSKEY_ALREADY_REGISTERED: { status: 409, message: "This passkey is already registered." },

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
  // Client kinds (#13 part A)
  CLIENT_IS_PUBLIC: { status: 409, message: "This is a public client: it has no secret to rotate." },
  CONSENT_NOT_FOUND: { status: 404, message: "No such application among the ones you allowed." },

  // Grants (#13): device flow, client credentials, guest accounts
  USER_CODE_INVALID: { status: 400, message: "That code is not valid or has expired. Check the code on your device." },
  GUEST_ACCOUNTS_DISABLED: { status: 403, message: "Guest accounts are not enabled for this client." },
  NOT_A_GUEST: { status: 409, message: "This account is not a guest account (it may have been upgraded already)." },
  GUEST_EMAIL_IN_USE: {
    status: 409,
    message: "An account with this email already exists. Sign in to it instead; the guest account is not merged.",
  },
  // Admin console (#14)
  API_KEY_NOT_FOUND: { status: 404, message: "No admin API key with that id." },
  /** The console needs two-step verification on the admin's account (set it up at /account/mfa). */
  ADMIN_MFA_REQUIRED: { status: 403, message: "Turn on two-step verification to use the admin console." },
  /** A sensitive console action needs the admin's password or a current code, typed again. */
  STEP_UP_REQUIRED: { status: 401, message: "Confirm with your password or a code from your authenticator app." },
  // Privacy (#16): re-authentication before enrolling a factor; terms acceptance
  MFA_ENROLMENT_EXPIRED: { status: 409, message: "This set-up expired. Start setting up two-step verification again." },
  TERMS_NOT_ACCEPTED: { status: 400, message: "Accept the terms of service and the privacy notice to continue." },
  // Roles, permissions and entitlements (#11)
  ROLE_NOT_FOUND: { status: 404, message: "No role with that id in this app." },
  PERMISSION_NOT_FOUND: { status: 404, message: "No permission with that id in this app." },
  ROLE_NAME_TAKEN: { status: 409, message: "This app already has a role with that name." },
  PERMISSION_NAME_TAKEN: { status: 409, message: "This app already has a permission with that name." },
  ROLE_NOT_ASSIGNED: { status: 404, message: "The user does not have that role." },
  ENTITLEMENT_NOT_GRANTED: { status: 404, message: "The user has no admin grant of that entitlement." },
  // Billing (#12: payments through Stripe and BTCPay)
  BILLING_DISABLED: { status: 501, message: "Payments are not set up on this server." },
  PAYMENT_PROVIDER_UNAVAILABLE: { status: 400, message: "This plan cannot be bought with that payment method." },
  PAYMENT_PROVIDER_ERROR: { status: 502, message: "The payment provider did not answer as expected. Try again." },
  PLAN_NOT_FOUND: { status: 404, message: "No plan with that name." },
  PLAN_EXISTS: { status: 409, message: "A plan with that name already exists." },
  PLAN_ARCHIVED: { status: 409, message: "This plan is no longer on sale." },
  RETURN_TO_NOT_REGISTERED: { status: 400, message: "return_to must be an address of an app registered with Tessera." },
  NO_BILLING_ACCOUNT: { status: 404, message: "You have no payments account yet." },
  WEBHOOK_SIGNATURE_INVALID: { status: 400, message: "The webhook signature is missing, wrong or too old." },
  // Upstream sign-in and linked identities (federation, issue #15)
  PROVIDER_NOT_FOUND: { status: 404, message: "No sign-in provider with that name." },
  PROVIDER_EXISTS: { status: 409, message: "A sign-in provider with that name already exists." },
  FEDERATION_STATE_INVALID: {
    status: 400,
    message: "This sign-in could not be completed: it expired, was already used, or was not started in this browser.",
  },
  FEDERATION_DENIED: { status: 400, message: "The sign-in was cancelled at the provider." },
  FEDERATION_UPSTREAM_INVALID: { status: 400, message: "The sign-in provider's answer could not be verified." },
  FEDERATION_UPSTREAM_UNAVAILABLE: { status: 502, message: "The sign-in provider could not be reached. Try again." },
  IDENTITY_IN_USE: { status: 409, message: "This sign-in is already linked to another account." },
  IDENTITY_NOT_FOUND: { status: 404, message: "No linked sign-in with that id on this account." },
  LAST_SIGN_IN_METHOD: {
    status: 409,
    message: "This is the last way to sign in to this account. Set a password or link another sign-in first.",
  },
  // Metrics (issue #17, ecosystem)
  METRICS_TOKEN_REQUIRED: { status: 401, message: "Metrics need the bearer token set in METRICS_TOKEN." },

  // Webhooks to apps (issue #16)
  WEBHOOK_NOT_FOUND: { status: 404, message: "This client has no webhook." },
  WEBHOOK_DELIVERY_NOT_FOUND: { status: 404, message: "No webhook delivery with that id." },
  WEBHOOK_DELIVERY_NOT_DEAD: { status: 409, message: "Only a dead webhook delivery can be redelivered." },

  // OAuth 2.0 / OpenID Connect (RFC 6749, RFC 6750, OIDC Core): the RFC `error` values
  ...oauthErrors,
} as const satisfies Record<string, { status: number; message: string; oauth?: OAuthErrorCode }>;

export type ErrorCode = keyof typeof errorCatalog;
