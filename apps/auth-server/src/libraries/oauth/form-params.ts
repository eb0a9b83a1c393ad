import type { ParamSpec } from "./params.ts";

/**
 * The form parameters each OAuth endpoint reads (readParams: each a string of at most this many characters; unknown
 * parameters are ignored, RFC 6749 3.1). Module constants, so readParams builds each schema once and finds it by
 * identity; /openapi.json describes the form bodies from the same specs.
 */

/** Client authentication in the body (client_secret_post, or a public client's client_id); Basic is the other way. */
export const CLIENT_AUTH_PARAMS = { client_id: 128, client_secret: 512 } as const satisfies ParamSpec;

/** POST /token (RFC 6749 3.2; RFC 8628 3.4 for the device code). */
export const TOKEN_PARAMS = {
  grant_type: 64,
  code: 512,
  redirect_uri: 2000,
  code_verifier: 256,
  refresh_token: 512,
  scope: 1024,
  device_code: 512,
} as const satisfies ParamSpec;

/** POST /revoke (RFC 7009 2.1) and POST /introspect (RFC 7662 2.1). */
export const TOKEN_HINT_PARAMS = { token: 16 * 1024, token_type_hint: 64 } as const satisfies ParamSpec;

/** POST /device_authorization (RFC 8628 3.1). */
export const DEVICE_AUTHORIZATION_PARAMS = { scope: 1024 } as const satisfies ParamSpec;

/** POST /api/v1/clients/sessions: server-to-server sign-in of trusted first-party clients. */
export const DIRECT_SIGN_IN_PARAMS = {
  username: 320,
  password: 1024,
  scope: 1024,
  accept_terms_version: 64,
  accept_privacy_version: 64,
} as const satisfies ParamSpec;

/** POST /userinfo with the token in the body (RFC 6750 2.2). */
export const USERINFO_BODY_PARAMS = { access_token: 16 * 1024 } as const satisfies ParamSpec;
