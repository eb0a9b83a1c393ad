import swagger from "@fastify/swagger";
import type { FastifyInstance, RouteOptions } from "fastify";
import { z } from "zod";
import { type ErrorCode, errorCatalog } from "../errors/catalog.ts";
import { accountSchemas, guestCreateBody, guestUpgradeBody } from "../libraries/accounts/schemas.ts";
import { apiKeyInputSchema } from "../libraries/admin/api-keys.ts";
import { endSessionsBody, levelBody, signingKeyRotateBody, unlockBody } from "../libraries/admin/schemas.ts";
import { AUTHORIZATION_WIRE_NAMES, CLIENT_WIRE_NAMES, PROVIDER_WIRE_NAMES } from "../libraries/admin/wire-names.ts";
import {
  assignSchema,
  grantSchema,
  permissionCreateSchema,
  permissionUpdateSchema,
  roleCreateSchema,
  roleUpdateSchema,
} from "../libraries/authorization/input.ts";
import { planInputSchema } from "../libraries/billing/plans.ts";
import { clientCreateSchema, clientUpdateSchema, GRANT_TYPES } from "../libraries/clients/input.ts";
import { providerInput } from "../libraries/federation/providers.ts";
import { mfaSchemas } from "../libraries/mfa/schemas.ts";
import {
  CLIENT_AUTH_PARAMS,
  DEVICE_AUTHORIZATION_PARAMS,
  DIRECT_SIGN_IN_PARAMS,
  TOKEN_HINT_PARAMS,
  TOKEN_PARAMS,
  USERINFO_BODY_PARAMS,
} from "../libraries/oauth/form-params.ts";
import type { ParamSpec } from "../libraries/oauth/params.ts";
import { passkeySchemas } from "../libraries/passkeys/schemas.ts";
import { reauthBody } from "../libraries/privacy/reauth.ts";
import { endpointInput, rotateSecretBody } from "../libraries/webhooks/endpoints.ts";
import { RESPONSE_SCHEMAS, type ResponseSchemaName, responseJsonSchema } from "./openapi-responses.ts";

/**
 * The OpenAPI 3.1 description of the HTTP API (issue #17), served at `/openapi.json` with a readable page at `/docs`.
 *
 * Routes validate their input with zod inside the handler (validation.ts), not with Fastify's JSON Schema, so no route
 * carries a Fastify `schema` and nothing here changes how a request is validated or answered: @fastify/swagger
 * collects the routes, and `transformObject` fills each operation in from the table below (summary, operationId,
 * request body converted from the same zod schemas the handlers parse with, and the catalog error codes it can answer).
 * An operation missing from the table stays in the document without an operationId, which the test refuses, so a new
 * route cannot ship undocumented. Hosted HTML pages and the admin console are hidden (`HIDDEN_PAGES`); the 405
 * catch-alls (routes registered with a list of methods, see routes/oauth/http.ts methodNotAllowed) are not operations.
 */

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";
type Tag = "account" | "admin" | "oauth" | "billing" | "operations";

interface Op {
  id: string;
  summary: string;
  tag: Tag;
  /** Codes of errors/catalog.ts this operation can answer, besides the group's common ones. */
  codes?: ErrorCode[];
  /** Codes this operation answers with another status than the catalog's (e.g. the device flow's 400 slow_down). */
  codesAt?: { status: number; codes: ErrorCode[] }[];
  /** The request body: a JSON body's zod schema, as the handler parses it, or an OAuth form's parameters. */
  body?: z.ZodType | OAuthForm;
  /** The success status (200 unless said). */
  ok?: number;
  /** The success body, a schema of openapi-responses.ts (undocumented bodies are described in the summary). */
  response?: ResponseSchemaName;
  /** The success body's media type (application/json unless said). */
  responseType?: string;
  /** A second success answer (another status, with or without a body), e.g. register's 200 when it signs the owner in. */
  alsoOk?: { status: number; response?: ResponseSchemaName; description: string };
  security?: "session" | "admin" | "client" | "bearer" | "none";
}

/** An OAuth form body: the parameters readParams reads (libraries/oauth/form-params.ts), every one a string. */
interface OAuthForm {
  params: ParamSpec;
  /** client_id / client_secret may come in the body (client_secret_post, public clients) instead of Basic. */
  clientAuth?: boolean;
  required?: string[];
  enums?: Record<string, string[]>;
}

function oauthFormSchema(form: OAuthForm): Record<string, unknown> {
  const params: ParamSpec = { ...form.params, ...(form.clientAuth ? CLIENT_AUTH_PARAMS : {}) };
  return {
    type: "object",
    properties: Object.fromEntries(
      Object.entries(params).map(([name, max]) => [
        name,
        { type: "string", maxLength: max, ...(form.enums?.[name] ? { enum: form.enums[name] } : {}) },
      ]),
    ),
    ...(form.required?.length ? { required: form.required } : {}),
    description: "Unknown parameters are ignored (RFC 6749 3.1); a parameter sent twice is invalid_request.",
  };
}

const COMMON: ErrorCode[] = ["RATE_LIMITED", "INTERNAL_ERROR", "DATABASE_UNAVAILABLE", "SHUTTING_DOWN"];
const BODY: ErrorCode[] = ["VALIDATION_FAILED", "MALFORMED_BODY", "UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE"];
const SESSION: ErrorCode[] = ["UNAUTHENTICATED"];
const ADMIN: ErrorCode[] = ["UNAUTHENTICATED", "FORBIDDEN", "ADMIN_MFA_REQUIRED"];
const SIGN_IN: ErrorCode[] = [
  "INVALID_CREDENTIALS",
  "ACCOUNT_DISABLED",
  "EMAIL_NOT_VERIFIED",
  "ACCOUNT_LOCKED",
  "LOGIN_THROTTLED",
  "IP_SUSPENDED",
];
const PASSKEY: ErrorCode[] = ["PASSKEY_CHALLENGE_EXPIRED", "PASSKEY_INVALID", "PASSKEY_COUNTER_MISMATCH"];
/** Failed client authentications are throttled per client and IP: 429 slow_down. */
const CLIENT_AUTH: ErrorCode[] = ["invalid_client", "invalid_request", "unauthorized_client", "slow_down"];
/** The current password typed again (libraries/password-step.ts): checked and throttled like a sign-in. */
const PASSWORD_AGAIN: ErrorCode[] = ["INVALID_CREDENTIALS", "LOGIN_THROTTLED", "ACCOUNT_LOCKED", "IP_SUSPENDED"];

/**
 * A library's input schema under the admin API's wire (snake_case) names, for the document. The admin routes rename
 * wire fields to the library's and let it validate; cross-field rules (refinements) stay in the library.
 */
function wireNamed(schema: z.ZodObject, names: Record<string, string>): z.ZodObject {
  return z.strictObject(Object.fromEntries(Object.entries(schema.shape).map(([k, v]) => [names[k] ?? k, v])));
}

const A = "/api/v1";
const ADM = "/admin/api/v1";

const acc = (id: string, summary: string, extra: Partial<Op> = {}): Op => ({
  id,
  summary,
  tag: "account",
  security: "session",
  ...extra,
});
const adm = (id: string, summary: string, extra: Partial<Op> = {}): Op => ({
  id,
  summary,
  tag: "admin",
  security: "admin",
  ...extra,
});
const oauth = (id: string, summary: string, extra: Partial<Op> = {}): Op => ({ id, summary, tag: "oauth", ...extra });

const AUTHORIZE_REDIRECT =
  "A redirect: to the client's redirect_uri with a code (or an error), or to a hosted page (sign-in, consent, terms). " +
  "200 is a hosted page shown in place.";
const LOGOUT_REDIRECT = "A redirect to the client's post_logout_redirect_uri (or Tessera's signed-out page).";

/** Every documented operation, keyed by "METHOD /url" (the Fastify route template). */
export const OPERATIONS: Record<string, Op> = {
  // Account API (JSON, Tessera's session cookie)
  [`POST ${A}/register`]: acc("register", "Create an account", {
    body: accountSchemas.register,
    codes: ["WEAK_PASSWORD", "TERMS_NOT_ACCEPTED"],
    security: "none",
    ok: 202,
    response: "CheckEmail",
    alsoOk: {
      status: 200,
      response: "SignedIn",
      description: "The email already had an account and the password was its own: signed in.",
    },
  }),
  [`POST ${A}/login`]: acc("signIn", "Sign in with email and password (401 MFA_REQUIRED starts the second step)", {
    body: accountSchemas.login,
    codes: [...SIGN_IN, "MFA_REQUIRED"],
    security: "none",
    response: "SignedIn",
  }),
  [`POST ${A}/login/otp`]: acc("signInSecondStep", "Finish a sign-in with a one-time or recovery code", {
    body: mfaSchemas.code,
    codes: ["INVALID_OTP", "MFA_CHALLENGE_EXPIRED", ...SIGN_IN],
    security: "none",
    response: "SignedIn",
  }),
  [`POST ${A}/logout`]: acc("signOut", "End this browser's session", { ok: 204, security: "none" }),
  [`POST ${A}/verify-email`]: acc("verifyEmail", "Confirm an email address with the token from the email", {
    body: accountSchemas.verifyEmail,
    codes: ["CONFLICT", "INVALID_TOKEN"],
    security: "none",
    response: "AccountMe",
  }),
  [`POST ${A}/forgot-password`]: acc(
    "forgotPassword",
    "Send a password-reset email (answers the same for any address)",
    {
      body: accountSchemas.forgotPassword,
      ok: 202,
      security: "none",
      response: "CheckEmail",
    },
  ),
  [`POST ${A}/reset-password`]: acc("resetPassword", "Set a new password with the token from the email", {
    body: accountSchemas.resetPassword,
    codes: ["INVALID_TOKEN", "WEAK_PASSWORD"],
    ok: 204,
    security: "none",
  }),
  [`GET ${A}/me`]: acc("getMe", "The signed-in user", { response: "AccountMe" }),
  [`PATCH ${A}/me`]: acc("updateMe", "Change the profile", { body: accountSchemas.profile, response: "AccountMe" }),
  [`POST ${A}/me/delete`]: acc("deleteMe", "Delete the account", {
    body: accountSchemas.deleteAccount,
    codes: [...PASSWORD_AGAIN, "INVALID_CREDENTIALS", "STEP_UP_REQUIRED"],
    ok: 204,
  }),
  [`POST ${A}/me/password`]: acc("changePassword", "Change the password", {
    body: accountSchemas.changePassword,
    codes: [...PASSWORD_AGAIN, "INVALID_CREDENTIALS", "WEAK_PASSWORD"],
    ok: 204,
  }),
  [`POST ${A}/me/email`]: acc("changeEmail", "Change the email address (confirmed by a link)", {
    body: accountSchemas.changeEmail,
    codes: [...PASSWORD_AGAIN, "INVALID_CREDENTIALS", "CONFLICT"],
    ok: 202,
    response: "CheckEmail",
  }),
  [`GET ${A}/me/export`]: acc("exportMe", "Download the account's data (JSON)", {
    response: "DataExport",
    codes: ["STEP_UP_REQUIRED"],
  }),
  [`POST ${A}/me/export`]: acc("requestExport", "Ask for the account's data export", {
    response: "DataExport",
    body: reauthBody.optional(),
    codes: PASSWORD_AGAIN,
  }),
  [`POST ${A}/me/verification`]: acc("resendVerification", "Send the verification email again", {
    ok: 202,
    response: "CheckEmail",
  }),
  [`GET ${A}/me/sessions`]: acc("listSessions", "The user's signed-in sessions", { response: "SessionList" }),
  [`POST ${A}/me/sessions/end-others`]: acc("endOtherSessions", "Sign out on every other device", {
    response: "EndedSessions",
  }),
  [`POST ${A}/me/sessions/:sessionId/end`]: acc("endMySession", "End one session", {
    codes: ["SESSION_NOT_FOUND"],
    ok: 204,
  }),
  [`GET ${A}/mfa`]: acc("getMfa", "Two-step sign-in status", { response: "MfaStatus" }),
  [`POST ${A}/mfa/totp`]: acc("startTotp", "Start setting up an authenticator app", {
    body: mfaSchemas.reauth.optional(),
    codes: [...PASSWORD_AGAIN, "EMAIL_NOT_VERIFIED", "MFA_ALREADY_ENABLED", "STEP_UP_REQUIRED"],
    ok: 201,
    response: "TotpEnrolment",
  }),
  [`POST ${A}/mfa/totp/confirm`]: acc("confirmTotp", "Confirm the authenticator app with a code", {
    body: mfaSchemas.code,
    codes: ["INVALID_OTP", "MFA_ENROLMENT_EXPIRED", "MFA_ALREADY_ENABLED"],
    response: "RecoveryCodes",
  }),
  [`POST ${A}/mfa/totp/disable`]: acc("disableTotp", "Turn two-step sign-in off", {
    body: mfaSchemas.disable,
    codes: [...PASSWORD_AGAIN, "INVALID_OTP", "MFA_NOT_ENABLED", "INVALID_CREDENTIALS", "STEP_UP_REQUIRED"],
    ok: 204,
  }),
  [`POST ${A}/mfa/recovery-codes`]: acc("newRecoveryCodes", "Replace the recovery codes", {
    body: mfaSchemas.code,
    codes: ["MFA_NOT_ENABLED", "STEP_UP_REQUIRED"],
    response: "RecoveryCodes",
  }),
  [`POST ${A}/passkeys/registration/options`]: acc("passkeyRegistrationOptions", "WebAuthn options to add a passkey", {
    response: "PasskeyCreationOptions",
    body: passkeySchemas.registrationOptions,
    codes: [...PASSWORD_AGAIN, "STEP_UP_REQUIRED", "INVALID_CREDENTIALS"],
  }),
  [`POST ${A}/passkeys/registration`]: acc("registerPasskey", "Add a passkey", {
    response: "PasskeyRegistered",
    body: passkeySchemas.registrationVerify,
    codes: [...PASSKEY, "PASSKEY_ALREADY_REGISTERED"],
    ok: 201,
  }),
  [`POST ${A}/passkeys/sign-in/options`]: acc("passkeySignInOptions", "WebAuthn options to sign in with a passkey", {
    response: "PasskeyRequestOptions",
    security: "none",
  }),
  [`POST ${A}/passkeys/sign-in`]: acc("signInWithPasskey", "Sign in with a passkey", {
    response: "SignedInRedirect",
    body: passkeySchemas.authenticationVerify,
    codes: [...PASSKEY, "PASSKEY_NOT_FOUND", "ACCOUNT_DISABLED", "IP_SUSPENDED"],
    security: "none",
  }),
  [`POST ${A}/passkeys/second-step/options`]: acc("passkeySecondStepOptions", "WebAuthn options for the second step", {
    response: "PasskeyRequestOptions",
    codes: ["MFA_CHALLENGE_EXPIRED"],
    security: "none",
  }),
  [`POST ${A}/passkeys/second-step`]: acc("passkeySecondStep", "Finish a sign-in's second step with a passkey", {
    response: "SignedInRedirect",
    body: passkeySchemas.authenticationVerify,
    codes: [...PASSKEY, "PASSKEY_NOT_FOUND", "MFA_CHALLENGE_EXPIRED"],
    security: "none",
  }),
  [`POST ${A}/guest`]: acc("createGuest", "Start a guest account (clients that opted in)", {
    body: guestCreateBody.optional(),
    codes: ["GUEST_ACCOUNTS_DISABLED", "INVALID_CLIENT"],
    security: "client",
    response: "TokenResponse",
  }),
  [`POST ${A}/guest/upgrade`]: acc("upgradeGuest", "Turn a guest account into a full account", {
    body: guestUpgradeBody,
    codes: ["TOKEN_INVALID", "NOT_A_GUEST", "GUEST_EMAIL_IN_USE", "WEAK_PASSWORD", "GUEST_ACCOUNTS_DISABLED"],
    response: "GuestUpgradeResponse",
  }),
  [`DELETE ${A}/guest`]: acc("deleteGuest", "Delete a guest account", { codes: ["NOT_A_GUEST"], ok: 204 }),
  [`POST ${A}/clients/sessions`]: oauth(
    "directSignIn",
    "Server-to-server sign-in for trusted first-party clients (off by default); form: username, password, scope, " +
      "and after TERMS_ACCEPTANCE_REQUIRED accept_terms_version / accept_privacy_version",
    {
      body: { params: DIRECT_SIGN_IN_PARAMS, clientAuth: true, required: ["username", "password"] },
      codes: [...CLIENT_AUTH, "invalid_grant", "access_denied"],
      security: "client",
      response: "TokenResponse",
    },
  ),

  // OAuth 2.0 / OpenID Connect
  "GET /authorize": oauth("authorize", "Authorization endpoint (code flow with PKCE S256); answers by redirect", {
    alsoOk: { status: 302, description: AUTHORIZE_REDIRECT },
  }),
  "POST /authorize": oauth("authorizePost", "Authorization endpoint, parameters as a form", {
    alsoOk: { status: 303, description: AUTHORIZE_REDIRECT },
  }),
  "POST /token": oauth("token", "Token endpoint: authorization_code, refresh_token, client_credentials, device_code", {
    body: { params: TOKEN_PARAMS, clientAuth: true, required: ["grant_type"], enums: { grant_type: [...GRANT_TYPES] } },
    codes: [
      ...CLIENT_AUTH,
      "invalid_grant",
      "unsupported_grant_type",
      "invalid_scope",
      "invalid_dpop_proof",
      "authorization_pending",
      "expired_token",
      "access_denied",
      "use_dpop_nonce",
    ],
    // RFC 8628 3.5: a device polling too fast gets slow_down as a token error (400); failed client authentication
    // is throttled with 429 slow_down (CLIENT_AUTH).
    codesAt: [{ status: 400, codes: ["slow_down"] }],
    security: "client",
    response: "TokenResponse",
  }),
  "OPTIONS /token": oauth("tokenPreflight", "CORS preflight for browser clients", { ok: 204 }),
  "POST /revoke": oauth("revoke", "RFC 7009 token revocation", {
    body: { params: TOKEN_HINT_PARAMS, clientAuth: true, required: ["token"] },
    codes: [...CLIENT_AUTH, "unsupported_token_type"],
    security: "client",
  }),
  "OPTIONS /revoke": oauth("revokePreflight", "CORS preflight for browser clients", { ok: 204 }),
  "POST /introspect": oauth("introspect", "RFC 7662 token introspection", {
    body: { params: TOKEN_HINT_PARAMS, clientAuth: true, required: ["token"] },
    codes: CLIENT_AUTH,
    security: "client",
    response: "IntrospectionResponse",
  }),
  "POST /device_authorization": oauth("deviceAuthorization", "RFC 8628 device authorization", {
    body: { params: DEVICE_AUTHORIZATION_PARAMS, clientAuth: true },
    codes: [...CLIENT_AUTH, "invalid_scope", "slow_down"],
    security: "client",
    response: "DeviceAuthorizationResponse",
  }),
  "GET /userinfo": oauth("userinfo", "OIDC UserInfo (Bearer access token)", {
    codes: ["invalid_token", "insufficient_scope", "invalid_request"],
    codesAt: [{ status: 401, codes: ["invalid_dpop_proof"] }], // RFC 9449 7.1: at a resource, 401
    security: "bearer",
    response: "UserInfoResponse",
  }),
  "POST /userinfo": oauth("userinfoPost", "OIDC UserInfo, token in the form body or header", {
    body: { params: USERINFO_BODY_PARAMS },
    codes: ["invalid_token", "insufficient_scope", "invalid_request"],
    codesAt: [{ status: 401, codes: ["invalid_dpop_proof"] }],
    security: "bearer",
    response: "UserInfoResponse",
  }),
  "OPTIONS /userinfo": oauth("userinfoPreflight", "CORS preflight for browser clients", { ok: 204 }),
  "GET /logout": oauth("endSession", "OIDC RP-initiated logout (shows a confirmation or redirects)", {
    alsoOk: { status: 302, description: LOGOUT_REDIRECT },
  }),
  "POST /logout": oauth("endSessionPost", "OIDC RP-initiated logout, confirmed", {
    alsoOk: { status: 303, description: LOGOUT_REDIRECT },
  }),
  "GET /.well-known/openid-configuration": oauth("discovery", "OpenID Provider metadata", { response: "Discovery" }),
  "OPTIONS /.well-known/openid-configuration": oauth("discoveryPreflight", "CORS preflight", { ok: 204 }),
  "GET /jwks": oauth("jwks", "The public signing keys (JWK Set)", {
    response: "Jwks",
    responseType: "application/jwk-set+json",
  }),
  "OPTIONS /jwks": oauth("jwksPreflight", "CORS preflight", { ok: 204 }),

  // Admin API (admin API key or an admin's session)
  [`GET ${ADM}/users`]: adm("adminListUsers", "List and search users", { response: "AdminUserList" }),
  [`GET ${ADM}/users/:id`]: adm("adminGetUser", "One user", {
    response: "AdminUserProfile",
    codes: ["USER_NOT_FOUND"],
  }),
  [`DELETE ${ADM}/users/:id`]: adm("adminDeleteUser", "Delete a user (not the caller's own account: 409)", {
    codes: ["USER_NOT_FOUND", "CONFLICT"],
    ok: 204,
  }),
  [`GET ${ADM}/users/:id/export`]: adm("adminExportUser", "A user's data export", {
    response: "DataExport",
    codes: ["USER_NOT_FOUND"],
  }),
  [`POST ${ADM}/users/:id/disable`]: adm("adminDisableUser", "Disable a user (ends their sessions)", {
    response: "AdminUserStatus",
    codes: ["CONFLICT", "USER_NOT_FOUND"],
  }),
  [`POST ${ADM}/users/:id/enable`]: adm("adminEnableUser", "Enable a user", {
    response: "AdminUserStatus",
    codes: ["USER_NOT_FOUND"],
  }),
  [`POST ${ADM}/users/:id/sessions/end`]: adm(
    "adminEndUserSessions",
    "Sign a user out everywhere, or end the session `session_id` names",
    {
      body: endSessionsBody,
      response: "AdminSessionsEnded",
      codes: ["USER_NOT_FOUND"],
    },
  ),
  [`POST ${ADM}/users/:id/two-step/reset`]: adm("adminResetTwoStep", "Reset a user's two-step sign-in", {
    response: "AdminTwoStepReset",
    codes: ["USER_NOT_FOUND", "MFA_NOT_ENABLED"],
  }),
  [`POST ${ADM}/users/:id/password-reset`]: adm("adminSendPasswordReset", "Send a user a password-reset email", {
    response: "AdminPasswordResetSent",
    codes: ["USER_NOT_FOUND"],
    ok: 202,
  }),
  [`PUT ${ADM}/users/:id/admin-level`]: adm("adminSetAdminLevel", "Set a user's admin level", {
    response: "AdminLevel",
    body: levelBody,
    codes: ["USER_NOT_FOUND", "CONFLICT"],
  }),
  [`GET ${ADM}/users/:id/roles`]: adm("adminListUserRoles", "A user's roles", {
    response: "UserRoleList",
    codes: ["USER_NOT_FOUND"],
  }),
  [`POST ${ADM}/users/:id/roles`]: adm("adminAssignRole", "Assign a role to a user", {
    response: "UserRole",
    body: wireNamed(assignSchema, AUTHORIZATION_WIRE_NAMES),
    codes: ["USER_NOT_FOUND", "ROLE_NOT_FOUND"],
    ok: 201,
  }),
  [`DELETE ${ADM}/users/:id/roles/:roleId`]: adm("adminUnassignRole", "Take a role from a user", {
    response: "RoleUnassigned",
    codes: ["ROLE_NOT_FOUND", "USER_NOT_FOUND", "ROLE_NOT_ASSIGNED"],
  }),
  [`GET ${ADM}/users/:id/entitlements`]: adm("adminListEntitlements", "A user's entitlements", {
    response: "EntitlementList",
    codes: ["USER_NOT_FOUND"],
  }),
  [`POST ${ADM}/users/:id/entitlements`]: adm("adminGrantEntitlement", "Grant an entitlement", {
    response: "EntitlementGrant",
    body: wireNamed(grantSchema, AUTHORIZATION_WIRE_NAMES),
    codes: ["USER_NOT_FOUND", "CLIENT_NOT_FOUND"],
    ok: 201,
  }),
  [`DELETE ${ADM}/users/:id/entitlements/:name`]: adm("adminRevokeEntitlement", "Revoke an entitlement", {
    response: "EntitlementRevoked",
    codes: ["USER_NOT_FOUND", "ENTITLEMENT_NOT_GRANTED"],
  }),
  [`GET ${ADM}/clients`]: adm("adminListClients", "List client apps", { response: "ClientList" }),
  [`POST ${ADM}/clients`]: adm("adminCreateClient", "Register a client app (the secret is shown once)", {
    response: "Client",
    body: wireNamed(clientCreateSchema, CLIENT_WIRE_NAMES),
    codes: ["INVALID_REDIRECT_URI", "CONFLICT"],
    ok: 201,
  }),
  [`GET ${ADM}/clients/:id`]: adm("adminGetClient", "One client app", {
    response: "Client",
    codes: ["CLIENT_NOT_FOUND"],
  }),
  [`PATCH ${ADM}/clients/:id`]: adm("adminUpdateClient", "Change a client app", {
    response: "Client",
    body: wireNamed(clientUpdateSchema, CLIENT_WIRE_NAMES),
    codes: ["CLIENT_NOT_FOUND", "INVALID_REDIRECT_URI", "CONFLICT"],
  }),
  [`POST ${ADM}/clients/:id/rotate-secret`]: adm("adminRotateClientSecret", "Rotate a client's secret", {
    response: "Client",
    codes: ["CLIENT_NOT_FOUND", "CLIENT_IS_PUBLIC"],
  }),
  [`POST ${ADM}/clients/:id/disable`]: adm("adminDisableClient", "Disable a client app", {
    response: "Client",
    codes: ["CLIENT_NOT_FOUND"],
  }),
  [`POST ${ADM}/clients/:id/enable`]: adm("adminEnableClient", "Enable a client app", {
    response: "Client",
    codes: ["CLIENT_NOT_FOUND"],
  }),
  [`GET ${ADM}/clients/:id/permissions`]: adm("adminListPermissions", "A client's permissions", {
    response: "PermissionList",
    codes: ["CLIENT_NOT_FOUND"],
  }),
  [`POST ${ADM}/clients/:id/permissions`]: adm("adminCreatePermission", "Create a permission", {
    response: "Permission",
    body: permissionCreateSchema,
    codes: ["CLIENT_NOT_FOUND", "PERMISSION_NAME_TAKEN"],
    ok: 201,
  }),
  [`PATCH ${ADM}/clients/:id/permissions/:permissionId`]: adm("adminUpdatePermission", "Rename or describe", {
    response: "Permission",
    body: permissionUpdateSchema,
    codes: ["PERMISSION_NOT_FOUND", "PERMISSION_NAME_TAKEN"],
  }),
  [`DELETE ${ADM}/clients/:id/permissions/:permissionId`]: adm("adminDeletePermission", "Delete a permission", {
    response: "PermissionDeleted",
    codes: ["PERMISSION_NOT_FOUND"],
  }),
  [`GET ${ADM}/clients/:id/roles`]: adm("adminListClientRoles", "A client's roles", {
    response: "RoleList",
    codes: ["CLIENT_NOT_FOUND"],
  }),
  [`POST ${ADM}/clients/:id/roles`]: adm("adminCreateClientRole", "Create a role of one client", {
    response: "Role",
    body: roleCreateSchema,
    codes: ["CLIENT_NOT_FOUND", "ROLE_NAME_TAKEN", "PERMISSION_NOT_FOUND"],
    ok: 201,
  }),
  [`PATCH ${ADM}/clients/:id/roles/:roleId`]: adm("adminUpdateClientRole", "Change a client role", {
    response: "Role",
    body: roleUpdateSchema,
    codes: ["ROLE_NOT_FOUND", "ROLE_NAME_TAKEN", "PERMISSION_NOT_FOUND"],
  }),
  [`DELETE ${ADM}/clients/:id/roles/:roleId`]: adm("adminDeleteClientRole", "Delete a client role", {
    response: "RoleDeleted",
    codes: ["ROLE_NOT_FOUND"],
  }),
  [`GET ${ADM}/roles`]: adm("adminListRoles", "Global roles", { response: "RoleList" }),
  [`POST ${ADM}/roles`]: adm("adminCreateRole", "Create a global role", {
    response: "Role",
    body: roleCreateSchema,
    codes: ["ROLE_NAME_TAKEN", "PERMISSION_NOT_FOUND"],
    ok: 201,
  }),
  [`PATCH ${ADM}/roles/:roleId`]: adm("adminUpdateRole", "Change a global role", {
    response: "Role",
    body: roleUpdateSchema,
    codes: ["ROLE_NOT_FOUND", "ROLE_NAME_TAKEN", "PERMISSION_NOT_FOUND"],
  }),
  [`DELETE ${ADM}/roles/:roleId`]: adm("adminDeleteRole", "Delete a global role", {
    response: "RoleDeleted",
    codes: ["ROLE_NOT_FOUND"],
  }),
  [`GET ${ADM}/clients/:id/webhook`]: adm("adminGetWebhook", "A client's webhook", {
    response: "Webhook",
    codes: ["CLIENT_NOT_FOUND", "WEBHOOK_NOT_FOUND"],
  }),
  [`PUT ${ADM}/clients/:id/webhook`]: adm("adminSetWebhook", "Set a client's webhook", {
    response: "Webhook",
    body: endpointInput,
    codes: ["INVALID_REDIRECT_URI", "CLIENT_NOT_FOUND"],
  }),
  [`DELETE ${ADM}/clients/:id/webhook`]: adm("adminDeleteWebhook", "Remove a client's webhook", {
    codes: ["CLIENT_NOT_FOUND", "WEBHOOK_NOT_FOUND"],
    ok: 204,
  }),
  [`POST ${ADM}/clients/:id/webhook/rotate-secret`]: adm("adminRotateWebhookSecret", "Rotate the webhook secret", {
    response: "Webhook",
    body: rotateSecretBody,
    codes: ["CLIENT_NOT_FOUND", "WEBHOOK_NOT_FOUND"],
  }),
  [`GET ${ADM}/webhook-deliveries`]: adm("adminListWebhookDeliveries", "Webhook deliveries (filter by state)", {
    response: "WebhookDeliveryList",
  }),
  [`POST ${ADM}/webhook-deliveries/:id/redeliver`]: adm("adminRedeliverWebhook", "Deliver a dead webhook again", {
    response: "WebhookRedelivery",
    codes: ["WEBHOOK_DELIVERY_NOT_FOUND", "WEBHOOK_DELIVERY_NOT_DEAD"],
    ok: 202,
  }),
  [`GET ${ADM}/ip-suspensions`]: adm("adminListIpSuspensions", "Suspended IP addresses", {
    response: "IpSuspensionList",
  }),
  [`DELETE ${ADM}/ip-suspensions/:ip`]: adm("adminLiftIpSuspension", "Lift an IP suspension", {
    response: "IpSuspension",
    codes: ["NOT_FOUND"],
  }),
  [`GET ${ADM}/providers`]: adm("adminListProviders", "Upstream sign-in providers", { response: "ProviderList" }),
  [`POST ${ADM}/providers`]: adm("adminCreateProvider", "Add an upstream sign-in provider", {
    response: "Provider",
    body: wireNamed(providerInput, PROVIDER_WIRE_NAMES),
    codes: ["PROVIDER_EXISTS"],
    ok: 201,
  }),
  [`GET ${ADM}/providers/:slug`]: adm("adminGetProvider", "One provider", {
    response: "Provider",
    codes: ["PROVIDER_NOT_FOUND"],
  }),
  [`POST ${ADM}/providers/:slug/disable`]: adm("adminDisableProvider", "Disable a provider", {
    response: "Provider",
    codes: ["PROVIDER_NOT_FOUND"],
  }),
  [`POST ${ADM}/providers/:slug/enable`]: adm("adminEnableProvider", "Enable a provider", {
    response: "Provider",
    codes: ["PROVIDER_NOT_FOUND"],
  }),
  [`GET ${ADM}/audit-events`]: adm("adminListAuditEvents", "Query the audit log", { response: "AuditEventList" }),
  [`GET ${ADM}/audit-events/export`]: adm(
    "adminExportAuditEvents",
    "Export the audit log: a stream of one AuditEvent per line (NDJSON); `?format=csv` for CSV (text/csv)",
    { response: "AuditEvent", responseType: "application/x-ndjson" },
  ),
  [`GET ${ADM}/api-keys`]: adm("adminListApiKeys", "Admin API keys", { response: "ApiKeyList" }),
  [`POST ${ADM}/api-keys`]: adm("adminCreateApiKey", "Create an admin API key (shown once)", {
    response: "ApiKeyCreated",
    body: apiKeyInputSchema.strict(),
    ok: 201,
  }),
  [`POST ${ADM}/api-keys/:id/revoke`]: adm("adminRevokeApiKey", "Revoke an admin API key", {
    response: "ApiKey",
    codes: ["API_KEY_NOT_FOUND"],
  }),
  [`GET ${ADM}/account-locks`]: adm("adminListAccountLocks", "Locked accounts (failed sign-ins)", {
    response: "AccountLockList",
  }),
  [`DELETE ${ADM}/account-locks/:key`]: adm("adminClearAccountLock", "Clear an account lock", {
    codes: ["NOT_FOUND"],
    ok: 204,
  }),
  [`POST ${ADM}/account-locks/unlock`]: adm(
    "adminUnlockAccount",
    "Clear the lock and failures of an account by email",
    { response: "AccountUnlocked", body: unlockBody },
  ),
  [`GET ${ADM}/signing-keys`]: adm("adminListSigningKeys", "Token signing keys", { response: "SigningKeyList" }),
  [`POST ${ADM}/signing-keys/rotate`]: adm("adminRotateSigningKeys", "Rotate the token signing key", {
    body: signingKeyRotateBody,
    response: "SigningKeyRotated",
  }),

  // Billing
  [`GET ${ADM}/plans`]: {
    ...adm("adminListPlans", "Plans", { response: "PlanList" }),
    tag: "billing",
    codes: ["BILLING_DISABLED"],
  },
  [`POST ${ADM}/plans`]: {
    ...adm("adminCreatePlan", "Create or update a plan", { response: "Plan" }),
    tag: "billing",
    body: planInputSchema,
    ok: 201,
    codes: ["BILLING_DISABLED", "PLAN_EXISTS", "CLIENT_NOT_FOUND"],
  },
  [`GET ${ADM}/plans/:name`]: {
    ...adm("adminGetPlan", "One plan", { response: "Plan" }),
    tag: "billing",
    codes: ["BILLING_DISABLED", "PLAN_NOT_FOUND"],
  },
  [`POST ${ADM}/plans/:name/archive`]: {
    ...adm("adminArchivePlan", "Archive a plan (no new purchases)", { response: "Plan" }),
    tag: "billing",
    codes: ["BILLING_DISABLED", "PLAN_NOT_FOUND", "PLAN_ARCHIVED"],
  },
  "POST /webhooks/stripe": {
    id: "stripeWebhook",
    summary: "Stripe events (signed; each processed once)",
    response: "BillingWebhookReceived",
    tag: "billing",
    security: "none",
    codes: ["UNSUPPORTED_MEDIA_TYPE", "WEBHOOK_SIGNATURE_INVALID", "BILLING_DISABLED"],
  },
  "POST /webhooks/btcpay": {
    id: "btcpayWebhook",
    summary: "BTCPay Server events (signed; each processed once)",
    response: "BillingWebhookReceived",
    tag: "billing",
    security: "none",
    codes: ["WEBHOOK_SIGNATURE_INVALID", "BILLING_DISABLED"],
  },

  // Operations
  "GET /healthz": { id: "healthz", summary: "Liveness", tag: "operations", security: "none", response: "Health" },
  "GET /readyz": {
    id: "readyz",
    summary: "Readiness (503 while the database is unreachable or migrating)",
    response: "Ready",
    tag: "operations",
    security: "none",
    codes: ["MIGRATIONS_PENDING"],
  },
  "GET /metrics": {
    id: "metrics",
    summary: "Prometheus metrics (Bearer METRICS_TOKEN; only when configured)",
    tag: "operations",
    security: "bearer",
    codes: ["METRICS_TOKEN_REQUIRED"],
  },
  "GET /openapi.json": {
    id: "openapi",
    summary: "This document",
    tag: "operations",
    security: "none",
    response: "OpenApiDocument",
  },
};

/**
 * Hosted HTML pages, the admin console and static assets: not part of the API. A route is hidden when its URL is one
 * of these or starts with one of the prefixes (ending in "/"). The test lists the same set explicitly.
 */
export const HIDDEN_PAGES = {
  exact: [
    "/",
    "/docs",
    "/assets/:file",
    "/assets/brand/:file",
    "/register",
    "/register/check-email",
    "/login",
    "/login/otp",
    "/login/passkey",
    "/verify-email",
    "/forgot-password",
    "/forgot-password/sent",
    "/reset-password",
    "/authorize/consent",
    "/authorize/terms",
    "/device",
    "/device/decision",
    "/dev/outbox",
    "/federation/link",
    "/federation/link/email",
    "/federation/link/passkey/options",
    "/federation/link/passkey",
    "/federation/:slug/start",
    "/federation/:slug/callback",
    "/billing/checkout",
    "/billing/return",
    "/account",
    "/admin",
  ],
  prefixes: [
    "/account/",
    "/admin/audit",
    "/admin/clients",
    "/admin/users",
    "/admin/security",
    "/admin/roles",
    "/admin/plans",
    "/admin/providers",
    "/admin/webhooks",
    "/admin/try-it/",
  ],
};

export function isHiddenPage(url: string): boolean {
  return HIDDEN_PAGES.exact.includes(url) || HIDDEN_PAGES.prefixes.some((p) => url.startsWith(p));
}

/** A 405 catch-all: every genuine route is registered with one method (app.get, app.post, ...). */
function isMethodCatchAll(route: Pick<RouteOptions, "method">): boolean {
  return Array.isArray(route.method);
}

function bodySchema(body: z.ZodType): Record<string, unknown> {
  const schema = z.toJSONSchema(body, { io: "input", unrepresentable: "any", target: "draft-2020-12" });
  delete schema.$schema;
  return schema as Record<string, unknown>;
}

const errorResponse = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message", "status"],
      properties: {
        code: { type: "string", description: "A stable UPPER_SNAKE code of the error catalog." },
        message: { type: "string", description: "For people; never switch on it." },
        status: { type: "integer" },
        fields: {
          type: "array",
          items: {
            type: "object",
            required: ["field", "message"],
            properties: { field: { type: "string" }, message: { type: "string" } },
          },
        },
        requestId: { type: "string" },
      },
    },
  },
};

const oauthErrorResponse = {
  type: "object",
  required: ["error"],
  properties: {
    error: { type: "string", description: "The RFC 6749 / 6750 / OIDC error value." },
    error_description: { type: "string" },
    tessera_code: { type: "string", description: "A finer outcome a client can switch on (see the catalog)." },
    required_documents: {
      type: "array",
      description:
        "With tessera_code TERMS_ACCEPTANCE_REQUIRED (direct sign-in): the documents the user must accept. Show them, " +
        "then retry with accept_terms_version / accept_privacy_version naming each version.",
      items: {
        type: "object",
        required: ["kind", "version", "url"],
        properties: {
          kind: { type: "string", enum: ["terms", "privacy"] },
          version: { type: "string" },
          url: { type: "string", format: "uri" },
        },
      },
    },
  },
};

type Operation = Record<string, unknown> & { responses?: Record<string, unknown> };

function describe(method: Method, op: Op, existing: Operation): Operation {
  const json = op.tag !== "oauth";
  const extra = op.security === "admin" ? ADMIN : op.security === "session" ? SESSION : [];
  const bodyCodes: ErrorCode[] = op.body ? (json ? BODY : ["invalid_request"]) : [];
  // The account and admin APIs validate parameters and queries too, and refuse a cross-site state change (http/csrf.ts).
  const apiCodes: ErrorCode[] =
    op.tag === "account" || op.tag === "admin" || op.security === "admin"
      ? ["VALIDATION_FAILED", ...(method === "GET" || method === "OPTIONS" ? [] : (["CSRF_INVALID"] as const))]
      : [];
  const codes = [...new Set<ErrorCode>([...(op.codes ?? []), ...extra, ...apiCodes, ...bodyCodes, ...COMMON])];
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const { status } = errorCatalog[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const elsewhere = new Map<number, ErrorCode[]>();
  for (const { status, codes: at } of op.codesAt ?? []) {
    byStatus.set(status, [...(byStatus.get(status) ?? []), ...at]);
    elsewhere.set(status, [...(elsewhere.get(status) ?? []), ...at]);
  }
  const body = (name: ResponseSchemaName) => ({
    [op.responseType ?? "application/json"]: { schema: { $ref: `#/components/schemas/${name}` } },
  });
  const responses: Record<string, unknown> = {
    ...(op.alsoOk
      ? {
          [String(op.alsoOk.status)]: {
            description: op.alsoOk.description,
            ...(op.alsoOk.response ? { content: body(op.alsoOk.response) } : {}),
          },
        }
      : {}),
    [String(op.ok ?? 200)]: op.response
      ? { description: "Success.", content: body(op.response) }
      : { description: "Success." },
  };
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    const oauthShaped = !json && list.some((c) => !/^[A-Z_]+$/.test(c));
    responses[String(status)] = {
      description: `Error codes: ${list.join(", ")}.`,
      "x-error-codes": list,
      // Codes answered here with another status than their catalog entry's (codesAt), by the RFC that says so.
      ...(elsewhere.has(status) ? { "x-error-codes-not-at-catalog-status": elsewhere.get(status) } : {}),
      content: {
        "application/json": {
          schema: { $ref: `#/components/schemas/${oauthShaped ? "OAuthErrorResponse" : "ErrorResponse"}` },
        },
      },
    };
  }
  const operation: Operation = {
    ...existing,
    operationId: op.id,
    summary: op.summary,
    tags: [op.tag],
    responses,
  };
  if (op.security && op.security !== "none") {
    operation.security = [{ [op.security]: [] }];
  }
  if (op.body && (method === "POST" || method === "PUT" || method === "PATCH")) {
    operation.requestBody =
      op.body instanceof z.ZodType
        ? {
            // An optional body (`.optional()`: an action with options) may be left out.
            required: !op.body.safeParse(undefined).success,
            content: { "application/json": { schema: bodySchema(op.body) } },
          }
        : {
            // Without required parameters (/userinfo: the token may come in the header, RFC 6750 2.2), optional.
            required: op.body.required !== undefined,
            content: { "application/x-www-form-urlencoded": { schema: oauthFormSchema(op.body) } },
          };
  }
  return operation;
}

const METHODS: Method[] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** Registers @fastify/swagger (before any route, so it sees them all) and serves `/openapi.json` and `/docs`. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  const { issuer } = app.ctx.config;
  // Every route added after this point (all of them: app.ts calls this first), for the test that checks coverage.
  const registered: RegisteredRoute[] = [];
  app.addHook("onRoute", (route) => {
    registered.push({ method: route.method, url: route.url ?? route.path });
  });
  app.decorate("registeredRoutes", () => registered);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Tessera",
        version: "1",
        description:
          "Tessera's account, admin, billing and OAuth 2.0 / OpenID Connect endpoints. JSON endpoints answer errors " +
          "as ErrorResponse with a stable code; OAuth endpoints as OAuthErrorResponse (RFC 6749 5.2). Other methods " +
          "on a documented path answer 405 with Allow.",
      },
      servers: [{ url: issuer }],
      tags: [
        { name: "account", description: "The signed-in user's account (JSON, Tessera's session cookie)" },
        { name: "oauth", description: "OAuth 2.0 and OpenID Connect" },
        { name: "admin", description: "Administration (admin API key as Bearer, or an admin's session)" },
        { name: "billing", description: "Plans and payment provider webhooks" },
        { name: "operations", description: "Health, metrics and this description" },
      ],
      components: {
        securitySchemes: {
          session: { type: "apiKey", in: "cookie", name: "tessera_session" },
          admin: { type: "http", scheme: "bearer", description: "An admin API key" },
          client: { type: "http", scheme: "basic", description: "client_id and client_secret (or in the form)" },
          bearer: { type: "http", scheme: "bearer" },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      if (isMethodCatchAll(route) || isHiddenPage(url)) return { schema: { ...schema, hide: true }, url };
      return { schema, url };
    },
    transformObject: (documentObject) => {
      const doc = (documentObject as unknown as { openapiObject: unknown }).openapiObject as Record<string, unknown> & {
        paths?: Record<string, Record<string, Operation>>;
        components?: Record<string, Record<string, unknown>>;
      };
      doc.components = {
        ...doc.components,
        schemas: {
          ...doc.components?.schemas,
          ErrorResponse: errorResponse,
          OAuthErrorResponse: oauthErrorResponse,
          ...Object.fromEntries(
            Object.keys(RESPONSE_SCHEMAS).map((name) => [name, responseJsonSchema(name as ResponseSchemaName)]),
          ),
        },
      };
      for (const [path, item] of Object.entries(doc.paths ?? {})) {
        const template = path.replace(/\{([^}]+)\}/g, ":$1");
        for (const method of METHODS) {
          const existing = item[method.toLowerCase()];
          const op = OPERATIONS[`${method} ${template}`];
          if (existing && op) item[method.toLowerCase()] = describe(method, op, existing);
        }
      }
      return doc as never;
    },
  });

  app.get("/openapi.json", async (_request, reply) => {
    // The same for everyone and without secrets: cacheable (by browsers and shared caches) for five minutes.
    reply.header("cache-control", "public, max-age=300");
    return app.swagger();
  });
  app.get("/docs", async (_request, reply) => {
    reply.header("cache-control", "public, max-age=300").type("text/html; charset=utf-8");
    return docsPage(app.swagger() as unknown as DocShape);
  });
}

export interface RegisteredRoute {
  method: RouteOptions["method"];
  url: string;
}

declare module "fastify" {
  interface FastifyInstance {
    /** Every route registered after the OpenAPI plugin, as the onRoute hook saw it (tests check the document). */
    registeredRoutes(): readonly RegisteredRoute[];
  }
}

interface DocShape {
  info: { title: string; description?: string };
  paths: Record<string, Record<string, Operation & { summary?: string; tags?: string[] }>>;
}

const escapeHtml = (value: string) =>
  value.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );

/**
 * A readable, self-contained page of the document: no script and no inline style, so the site-wide CSP holds
 * unchanged (Swagger UI would need script-src and style exceptions and ships a megabyte of JavaScript).
 */
function docsPage(doc: DocShape): string {
  const byTag = new Map<string, string[]>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags?.[0] ?? "other";
      const errors = Object.entries(op.responses ?? {})
        .filter(([status]) => Number(status) >= 400)
        .map(([status, r]) => `${status}: ${((r as { "x-error-codes"?: string[] })["x-error-codes"] ?? []).join(", ")}`)
        .map((line) => `<li><code>${escapeHtml(line)}</code></li>`)
        .join("");
      byTag.set(tag, [
        ...(byTag.get(tag) ?? []),
        `<section id="${escapeHtml(String(op.operationId ?? ""))}"><h3><code>${escapeHtml(method.toUpperCase())} ${escapeHtml(path)}</code></h3>` +
          `<p>${escapeHtml(String(op.summary ?? ""))}</p>${errors ? `<ul>${errors}</ul>` : ""}</section>`,
      ]);
    }
  }
  const sections = [...byTag]
    .map(([tag, ops]) => `<h2 id="tag-${escapeHtml(tag)}">${escapeHtml(tag)}</h2>${ops.join("")}`)
    .join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(doc.info.title)} API</title><link rel="stylesheet" href="/assets/tessera.css"></head><body><main><h1>${escapeHtml(doc.info.title)} API</h1><p>${escapeHtml(doc.info.description ?? "")}</p><p><a href="/openapi.json">openapi.json</a> (OpenAPI 3.1)</p>${sections}</main></body></html>`;
}
