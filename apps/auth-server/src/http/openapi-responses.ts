import { z } from "zod";
import { ADMIN_RESPONSE_SCHEMAS } from "./openapi-admin-responses.ts";

/**
 * The success bodies of the OAuth / OIDC JSON endpoints, as OpenAPI documents them (components/schemas). Loose
 * objects: a client must ignore members it does not know (RFC 6749 5.1, RFC 7662 2.2), so the document does not
 * promise that none will be added; the tests hold every member Tessera sends to one documented here
 * (test/ecosystem/openapi-responses.test.ts).
 */

const seconds = (description: string) => z.int().nonnegative().meta({ description });

const authorizationClaims = {
  roles: z
    .array(z.string())
    .optional()
    .meta({ description: "With the `roles` scope: this app's role names and global ones." }),
  permissions: z
    .array(z.string())
    .optional()
    .meta({ description: "With the `roles` scope: this app's permissions from those roles." }),
  entitlements: z
    .array(z.string())
    .optional()
    .meta({ description: "With the `roles` scope: entitlements (purchases, grants) that apply to this app." }),
};

export const tokenResponse = z
  .looseObject({
    access_token: z.string().meta({ description: "A JWT (`typ` at+jwt, RFC 9068) for this client's back end." }),
    token_type: z.enum(["Bearer", "DPoP"]).meta({ description: "DPoP when the token is bound to the client's key." }),
    expires_in: seconds("Seconds the access token is valid."),
    scope: z.string().meta({ description: "The granted scopes, space-separated." }),
    id_token: z
      .string()
      .optional()
      .meta({ description: "Grants for a user: an OIDC ID token, also on every refresh (profile changes)." }),
    refresh_token: z
      .string()
      .optional()
      .meta({ description: "Grants for a user: the new refresh token; the one presented stops working (rotation)." }),
    session_expires_at: z.int().optional().meta({
      description: "Grants for a user: epoch seconds when the sign-in session, and every refresh token of it, ends.",
    }),
    is_anonymous: z.literal(true).optional().meta({ description: "Present only for guest accounts." }),
  })
  .meta({
    description:
      "RFC 6749 5.1. client_credentials answers access_token, token_type, expires_in and scope only (no user, no session).",
  });

export const introspectionResponse = z
  .looseObject({
    active: z
      .boolean()
      .meta({ description: "false for any token that is not live or not the caller's: nothing else is said then." }),
    token_type: z.enum(["Bearer", "DPoP", "refresh_token"]).optional(),
    scope: z.string().optional(),
    client_id: z.string().optional(),
    sub: z.string().optional().meta({ description: "The user's id; for a client_credentials token, the client_id." }),
    aud: z.string().optional(),
    iss: z.string().optional(),
    iat: z.int().optional(),
    exp: z.int().optional(),
    jti: z.string().optional(),
    sid: z.string().optional().meta({ description: "The sign-in session (tokens for a user)." }),
    cnf: z
      .looseObject({ jkt: z.string() })
      .optional()
      .meta({ description: "A DPoP-bound access token: the key's thumbprint (RFC 9449 6.2)." }),
    ...authorizationClaims,
  })
  .meta({ description: "RFC 7662 2.2." });

export const userInfoResponse = z
  .looseObject({
    sub: z.string(),
    email: z.string().optional().meta({ description: "With the `email` scope (not for guests)." }),
    email_verified: z.boolean().optional().meta({ description: "With the `email` scope (not for guests)." }),
    name: z.string().optional().meta({ description: "With the `profile` scope, when the user has set one." }),
    is_anonymous: z.literal(true).optional().meta({ description: "Present only for guest accounts." }),
    ...authorizationClaims,
  })
  .meta({ description: "OIDC Core 5.3.2." });

export const deviceAuthorizationResponse = z
  .looseObject({
    device_code: z.string(),
    user_code: z.string().meta({ description: "For the user to type at verification_uri, e.g. BCDF-GHJK." }),
    verification_uri: z.string(),
    verification_uri_complete: z
      .string()
      .meta({ description: "verification_uri with the code in it (for a QR code)." }),
    expires_in: seconds("Seconds the codes are valid."),
    interval: seconds("Seconds to wait between polls of /token."),
  })
  .meta({ description: "RFC 8628 3.2." });

export const guestUpgradeResponse = z
  .looseObject({
    sub: z.string().meta({ description: "Unchanged: the guest's id." }),
    email: z.string(),
    email_verified: z.literal(false).meta({ description: "A verification email has gone out." }),
    is_anonymous: z.literal(false),
  })
  .meta({ description: "The upgraded account." });

// The account API (routes/api/accounts.ts userJson and sessionJson, routes/api/mfa.ts).

const dateTime = z.iso.datetime();

const accountUser = z.looseObject({
  id: z.string(),
  email: z.string(),
  emailVerified: z.boolean(),
  displayName: z.string().nullable(),
  createdAt: dateTime,
});

const accountSession = z.looseObject({
  id: z.string(),
  current: z.boolean().meta({ description: "The session of the request's own cookie." }),
  createdAt: dateTime,
  authenticatedAt: dateTime,
  lastSeenAt: dateTime,
  expiresAt: dateTime,
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  amr: z.array(z.string()).meta({ description: "How the user proved who they are (RFC 8176 values: pwd, otp, ...)." }),
});

export const signedIn = z
  .looseObject({ user: accountUser, session: accountSession })
  .meta({ description: "Signed in: the session cookie is set." });

export const accountMe = z.looseObject({ user: accountUser });

export const checkEmail = z
  .looseObject({
    status: z
      .enum(["check_email", "already_verified"])
      .meta({ description: "already_verified: only from POST /api/v1/me/verification." }),
  })
  .meta({
    description: "Accepted: an email is on its way (the same answer whether or not the address has an account).",
  });

export const sessionList = z.looseObject({ sessions: z.array(accountSession) });

export const endedSessions = z.looseObject({
  ended: z.int().nonnegative().meta({ description: "How many other sessions were ended." }),
});

export const mfaStatus = z.looseObject({
  enabled: z.boolean(),
  pending: z.boolean().meta({ description: "An authenticator app was started but not confirmed." }),
  recoveryCodesLeft: z.int().nonnegative(),
});

export const totpEnrolment = z.looseObject({
  secret: z.string().meta({ description: "Base32, for typing into an app by hand." }),
  otpauthUri: z.string(),
  qrCodeDataUrl: z.string().meta({ description: "An SVG QR code of otpauthUri as a data: URL." }),
});

export const recoveryCodes = z
  .looseObject({ recoveryCodes: z.array(z.string()) })
  .meta({ description: "Shown once: each code signs in once instead of an authenticator code." });

// Discovery, keys, operations, billing webhooks

const stringList = z.array(z.string());

export const discovery = z
  .looseObject({
    issuer: z.string(),
    authorization_endpoint: z.string(),
    token_endpoint: z.string(),
    userinfo_endpoint: z.string(),
    jwks_uri: z.string(),
    revocation_endpoint: z.string(),
    introspection_endpoint: z.string(),
    end_session_endpoint: z.string(),
    device_authorization_endpoint: z.string(),
    scopes_supported: stringList,
    response_types_supported: stringList,
    response_modes_supported: stringList,
    grant_types_supported: stringList,
    subject_types_supported: stringList,
    id_token_signing_alg_values_supported: stringList,
    token_endpoint_auth_methods_supported: stringList,
    revocation_endpoint_auth_methods_supported: stringList,
    introspection_endpoint_auth_methods_supported: stringList,
    dpop_signing_alg_values_supported: stringList,
    code_challenge_methods_supported: stringList,
    prompt_values_supported: stringList,
    claims_supported: stringList,
    acr_values_supported: stringList,
    claim_types_supported: stringList,
    claims_parameter_supported: z.boolean(),
    request_parameter_supported: z.boolean(),
    request_uri_parameter_supported: z.boolean(),
    require_request_uri_registration: z.boolean(),
    frontchannel_logout_supported: z.boolean(),
    backchannel_logout_supported: z.boolean(),
    backchannel_logout_session_supported: z.boolean(),
    authorization_response_iss_parameter_supported: z.boolean(),
  })
  .meta({ description: "OpenID Connect Discovery 1.0 section 3 (and RFC 8414) metadata." });

export const jwks = z
  .looseObject({
    keys: z.array(
      z.looseObject({
        kty: z.enum(["RSA", "EC", "OKP"]),
        kid: z.string(),
        alg: z.enum(["RS256", "ES256", "EdDSA"]),
        use: z.literal("sig"),
        n: z.string().optional().meta({ description: "RSA keys." }),
        e: z.string().optional().meta({ description: "RSA keys." }),
        crv: z.string().optional().meta({ description: "EC (P-256) and OKP (Ed25519) keys." }),
        x: z.string().optional().meta({ description: "EC and OKP keys." }),
        y: z.string().optional().meta({ description: "EC keys." }),
      }),
    ),
  })
  .meta({
    description:
      "RFC 7517 JWK Set: the active keys first, then retired ones still published (tokens they signed stay verifiable).",
  });

export const health = z.looseObject({ status: z.literal("ok") });

export const ready = z.looseObject({
  status: z.literal("ready"),
  database: z.enum(["postgres", "pglite"]).meta({ description: "pglite: the embedded development database." }),
});

export const billingWebhookReceived = z.looseObject({
  received: z.literal(true),
  duplicate: z.boolean().meta({ description: "The event was already processed (answered 200 so the sender stops)." }),
});

export const openApiDocument = z
  .looseObject({
    openapi: z.string(),
    info: z.record(z.string(), z.unknown()),
    servers: z.array(z.record(z.string(), z.unknown())).optional(),
    tags: z.array(z.record(z.string(), z.unknown())).optional(),
    paths: z.record(z.string(), z.unknown()),
    components: z.record(z.string(), z.unknown()),
    security: z.array(z.record(z.string(), z.unknown())).optional(),
  })
  .meta({ description: "This document (OpenAPI 3.1)." });

/** Every documented success body, by its name under components/schemas. */
export const RESPONSE_SCHEMAS = {
  TokenResponse: tokenResponse,
  IntrospectionResponse: introspectionResponse,
  UserInfoResponse: userInfoResponse,
  DeviceAuthorizationResponse: deviceAuthorizationResponse,
  GuestUpgradeResponse: guestUpgradeResponse,
  SignedIn: signedIn,
  AccountMe: accountMe,
  CheckEmail: checkEmail,
  SessionList: sessionList,
  EndedSessions: endedSessions,
  MfaStatus: mfaStatus,
  TotpEnrolment: totpEnrolment,
  RecoveryCodes: recoveryCodes,
  Discovery: discovery,
  Jwks: jwks,
  Health: health,
  Ready: ready,
  BillingWebhookReceived: billingWebhookReceived,
  OpenApiDocument: openApiDocument,
  ...ADMIN_RESPONSE_SCHEMAS,
} as const;

export type ResponseSchemaName = keyof typeof RESPONSE_SCHEMAS;

/** The JSON Schema of a documented body, as it appears under components/schemas. */
export function responseJsonSchema(name: ResponseSchemaName): Record<string, unknown> {
  const schema = z.toJSONSchema(RESPONSE_SCHEMAS[name], { io: "output", target: "draft-2020-12" }) as Record<
    string,
    unknown
  >;
  delete schema.$schema;
  return withoutSafeIntegerBounds(schema) as Record<string, unknown>;
}

/** zod writes every integer's bounds as ±Number.MAX_SAFE_INTEGER: noise in a document people read. */
function withoutSafeIntegerBounds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSafeIntegerBounds);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, v]) => !(key === "minimum" && v === Number.MIN_SAFE_INTEGER))
      .filter(([key, v]) => !(key === "maximum" && v === Number.MAX_SAFE_INTEGER))
      .map(([key, v]) => [key, withoutSafeIntegerBounds(v)]),
  );
}
