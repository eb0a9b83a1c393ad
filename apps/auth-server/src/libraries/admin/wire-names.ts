import type { ClientInput } from "../clients/index.ts";

/**
 * The admin API's wire (snake_case) names of library input fields, where they differ. The admin routes rename a wire
 * body to library names before the library validates it, and rename field errors back; the API document
 * (http/openapi.ts) describes the library's input schemas under these names.
 */

/** The admin API's wire name of every field of a client (routes/admin/client-wire.ts). */
export const CLIENT_WIRE_NAMES = {
  name: "name",
  redirectUris: "redirect_uris",
  postLogoutRedirectUris: "post_logout_redirect_uris",
  backchannelLogoutUri: "backchannel_logout_uri",
  logoUri: "logo_uri",
  brandColor: "brand_color",
  firstParty: "first_party",
  directSignIn: "direct_sign_in",
  allowedScopes: "allowed_scopes",
  idTokenSignedResponseAlg: "id_token_signed_response_alg",
  accessTokenTtlSeconds: "access_token_ttl_seconds",
  grantTypes: "grant_types",
  guestAccounts: "guest_accounts",
  tokenEndpointAuthMethod: "token_endpoint_auth_method",
  webOrigins: "web_origins",
  requireDpop: "require_dpop",
} as const satisfies Record<keyof ClientInput, string>;

/** Roles and entitlements (routes/admin/authorization); the rest (name, description, permissions) are the same. */
export const AUTHORIZATION_WIRE_NAMES: Record<string, string> = {
  roleId: "role_id",
  expiresAt: "expires_at",
  clientIds: "client_ids",
};

/** Upstream sign-in providers (routes/admin/providers.ts). */
export const PROVIDER_WIRE_NAMES: Record<string, string> = {
  displayName: "display_name",
  clientId: "client_id",
  clientSecret: "client_secret",
  trustedForEmail: "trusted_for_email",
  clientIds: "client_ids",
};
