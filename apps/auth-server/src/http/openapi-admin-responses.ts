import { z } from "zod";

/**
 * The success bodies of the admin API, the passkey ceremonies and the data export, as /openapi.json documents them
 * (components/schemas; the OAuth and account bodies are in openapi-responses.ts). Loose objects, like those: a client
 * must ignore members it does not know. The test suite holds every answer to them (test/contract.ts): a body that
 * does not validate, or has a member not named here at any depth, fails the test that provoked it.
 */

const dateTime = z.iso.datetime();
const nullableDateTime = dateTime.nullable();
/** The cursor of the next page (`?after=`), null on the last page. */
const nextAfter = z.string().nullable().meta({ description: "Pass as `after` for the next page; null on the last." });

// Users (routes/admin/user-actions.ts, users.ts)

const adminUser = z.looseObject({
  id: z.string(),
  email: z.string(),
  display_name: z.string().nullable(),
  email_verified: z.boolean(),
  created_at: dateTime,
  disabled_at: nullableDateTime,
});

export const adminUserList = z.looseObject({ users: z.array(adminUser), next_after: nextAfter });

export const adminUserProfile = adminUser
  .extend({
    admin_level: z.enum(["admin", "support"]).nullable(),
    two_step: z.looseObject({ enabled: z.boolean(), recovery_codes_left: z.int().nonnegative() }),
    sessions: z.array(
      z.looseObject({
        id: z.string(),
        created_at: dateTime,
        last_seen_at: dateTime,
        expires_at: dateTime,
        ip: z.string().nullable(),
        user_agent: z.string().nullable(),
        amr: z.array(z.string()),
      }),
    ),
    identities: z.array(
      z.looseObject({
        id: z.string(),
        provider: z.string().meta({ description: "The provider's slug." }),
        provider_name: z.string(),
        email: z.string().nullable(),
        linked_at: dateTime,
        last_sign_in_at: nullableDateTime,
      }),
    ),
    passkeys: z.array(
      z.looseObject({
        id: z.string(),
        name: z.string(),
        backed_up: z.boolean(),
        created_at: dateTime,
        last_used_at: nullableDateTime,
      }),
    ),
  })
  .meta({ description: "A user, with their admin level, two-step status, sessions, linked identities and passkeys." });

export const adminUserStatus = z
  .looseObject({
    id: z.string(),
    email: z.string(),
    disabled_at: nullableDateTime,
    sessions_ended: z.int().nonnegative().optional().meta({ description: "Disable only: sessions it ended." }),
  })
  .meta({ description: "The user after disable or enable." });

export const adminSessionsEnded = z.looseObject({ sessions_ended: z.int().nonnegative() });

export const adminTwoStepReset = z.looseObject({
  removed: z.boolean().meta({ description: "Whether there was a two-step factor to remove." }),
});

export const adminPasswordResetSent = z.looseObject({ sent: z.literal(true) });

export const adminLevel = z.looseObject({
  id: z.string(),
  email: z.string(),
  admin_level: z.enum(["admin", "support"]).nullable(),
});

// Roles, permissions, entitlements (libraries/authorization: RoleView, PermissionView, UserRoleView, ...)

const permission = z.looseObject({
  id: z.string(),
  client_id: z.string(),
  name: z.string(),
  description: z.string(),
  created_at: dateTime,
  updated_at: dateTime,
});

const role = z.looseObject({
  id: z.string(),
  client_id: z.string().nullable().meta({ description: "The app's client_id; null for a global role." }),
  name: z.string(),
  description: z.string(),
  permissions: z.array(z.string()),
  created_at: dateTime,
  updated_at: dateTime,
});

const userRole = z.looseObject({
  role_id: z.string(),
  role: z.string().meta({ description: "The role's name." }),
  client_id: z.string().nullable().meta({ description: "The app's client_id; null for a global role." }),
  client_name: z.string().nullable(),
  expires_at: nullableDateTime,
  active: z.boolean().meta({ description: "False once expires_at has passed." }),
});

const entitlementGrant = z.looseObject({
  id: z.string(),
  name: z.string(),
  client_ids: z
    .array(z.string())
    .nullable()
    .meta({ description: "The apps the grant is limited to; null = every app." }),
  client_names: z.array(z.string()).nullable(),
  expires_at: nullableDateTime,
  source: z.enum(["admin", "purchase"]),
  source_ref: z.string().meta({ description: "The purchase id for `purchase`; empty for `admin`." }),
  active: z.boolean(),
});

export const permissionList = z.looseObject({ permissions: z.array(permission), next_after: nextAfter });
export const roleList = z.looseObject({ roles: z.array(role), next_after: nextAfter });
export const userRoleList = z.looseObject({ roles: z.array(userRole), next_after: nextAfter });
export const entitlementList = z.looseObject({ entitlements: z.array(entitlementGrant), next_after: nextAfter });
export const permissionDeleted = z.looseObject({
  permission,
  removed_from_roles: z.array(z.string()).meta({ description: "Names of the roles that had it." }),
});
export const roleDeleted = z.looseObject({ role, assignments_removed: z.int().nonnegative() });
export const roleUnassigned = z.looseObject({ role_id: z.string(), removed: z.literal(true) });
export const entitlementRevoked = z.looseObject({ name: z.string(), removed: z.literal(true) });

// Clients (routes/admin/client-wire.ts ClientView)

export const adminClient = z
  .looseObject({
    client_id: z.string(),
    client_secret: z
      .string()
      .optional()
      .meta({ description: "Only in the answer that creates a confidential client or rotates its secret." }),
    name: z.string(),
    logo_uri: z.string().nullable(),
    brand_color: z.string().nullable(),
    redirect_uris: z.array(z.string()),
    post_logout_redirect_uris: z.array(z.string()),
    backchannel_logout_uri: z.string().nullable(),
    first_party: z.boolean(),
    direct_sign_in: z.boolean(),
    allowed_scopes: z.array(z.string()),
    grant_types: z.array(z.string()),
    guest_accounts: z.boolean(),
    id_token_signed_response_alg: z.string(),
    access_token_ttl_seconds: z.int().positive().nullable().meta({ description: "null: the server default." }),
    token_endpoint_auth_method: z.string().meta({ description: "`none` for a public client (no secret)." }),
    web_origins: z.array(z.string()),
    require_dpop: z.boolean(),
    previous_secret_expires_at: nullableDateTime,
    created_at: dateTime,
    updated_at: dateTime,
    disabled_at: nullableDateTime,
  })
  .meta({ description: "A client app, with RFC 7591 metadata names." });

export const adminClientList = z.looseObject({ clients: z.array(adminClient), next_after: nextAfter });

// Webhooks (routes/admin/webhooks.ts)

export const webhook = z.looseObject({
  client_id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  created_at: dateTime,
  updated_at: dateTime,
  secret: z.string().optional().meta({ description: "Only in the answer that creates the webhook or rotates it." }),
  previous_secret_expires_at: nullableDateTime
    .optional()
    .meta({ description: "Rotation only: when the previous secret stops signing (null: at once)." }),
});

export const webhookDeliveryList = z.looseObject({
  deliveries: z.array(
    z.looseObject({
      id: z.string(),
      client_id: z.string(),
      user_id: z.string().nullable(),
      event_type: z.string(),
      state: z.enum(["pending", "delivered", "dead"]),
      attempts: z.int().nonnegative(),
      last_error: z.string().nullable(),
      created_at: dateTime,
      next_attempt_at: nullableDateTime,
      delivered_at: nullableDateTime,
      dead_at: nullableDateTime,
    }),
  ),
});

export const webhookRedelivery = z.looseObject({ id: z.string(), state: z.literal("pending") });

// Security (routes/admin/ip-suspensions.ts, security.ts, api-keys.ts, audit-events.ts)

export const ipSuspension = z.looseObject({
  ip: z.string(),
  suspended_until: nullableDateTime,
  suspensions: z.int().nonnegative().meta({ description: "How many times the address has been suspended." }),
});
export const ipSuspensionList = z.looseObject({ ip_suspensions: z.array(ipSuspension) });

const apiKeyFields = {
  id: z.string(),
  name: z.string(),
  user_id: z.string().meta({ description: "The admin the key acts as." }),
  created_at: dateTime,
  last_used_at: nullableDateTime,
  revoked_at: nullableDateTime,
};
export const apiKey = z.looseObject(apiKeyFields);
export const apiKeyList = z.looseObject({ api_keys: z.array(apiKey) });
export const apiKeyCreated = z
  .looseObject({ ...apiKeyFields, key: z.string().meta({ description: "Shown once: only in this answer." }) })
  .meta({ description: "The new key; store it now." });

export const accountLockList = z.looseObject({
  account_locks: z.array(
    z.looseObject({
      key: z
        .string()
        .meta({ description: "An HMAC of the email (or `otp:` and one of the user id), never the email." }),
      kind: z.enum(["password", "code"]),
      failures: z.int().nonnegative(),
      locked_until: nullableDateTime,
    }),
  ),
});

export const accountUnlocked = z.looseObject({
  email: z.string(),
  cleared: z.boolean().meta({ description: "Whether there was a lock or failure count to clear." }),
});

export const signingKeyList = z.looseObject({
  signing_keys: z.array(
    z.looseObject({
      kid: z.string(),
      alg: z.enum(["RS256", "ES256", "EdDSA"]),
      status: z
        .enum(["active", "retired", "expired"])
        .meta({ description: "retired: still published in /jwks; expired: no longer published." }),
      created_at: dateTime,
      retired_at: nullableDateTime,
    }),
  ),
});

export const signingKeyRotated = z.looseObject({
  kid: z.string().meta({ description: "The new active key." }),
  alg: z.enum(["RS256", "ES256", "EdDSA"]),
  retired: z.array(z.string()).meta({ description: "The kids it retired." }),
  published_for_seconds: z.int().nonnegative().meta({ description: "How long retired keys stay in /jwks." }),
});

export const auditEvent = z.looseObject({
  id: z.string(),
  at: dateTime,
  event: z.string(),
  outcome: z.enum(["success", "failure"]),
  user_id: z.string().nullable(),
  actor_id: z.string().nullable(),
  client_id: z.string().nullable(),
  session_id: z.string().nullable(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable().meta({ description: "Event-specific; never a secret." }),
});
export const auditEventList = z.looseObject({
  audit_events: z.array(auditEvent),
  next_cursor: z.string().nullable().meta({ description: "Pass as `cursor` for the next page; null on the last." }),
});

// Providers (libraries/federation/providers.ts providerView)

export const provider = z.looseObject({
  slug: z.string(),
  type: z.enum(["oidc", "oauth2", "steam"]),
  preset: z.string().nullable(),
  display_name: z.string(),
  issuer: z.string().nullable(),
  client_id: z.string().nullable(),
  client_secret_set: z.boolean().meta({ description: "Whether a client secret is stored (it is never answered)." }),
  scopes: z.array(z.string()),
  endpoints: z.record(z.string(), z.string()),
  trusted_for_email: z.boolean(),
  client_ids: z.array(z.string()).nullable().meta({ description: "The apps that show it; null = every app." }),
  enabled: z.boolean(),
  created_at: dateTime,
  disabled_at: nullableDateTime,
});
export const providerList = z.looseObject({ providers: z.array(provider) });

// Billing (libraries/billing/plans.ts planView)

export const plan = z.looseObject({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  kind: z.enum(["subscription", "one_time"]),
  stripe_price: z.string().nullable(),
  duration_days: z.int().positive().nullable(),
  crypto_price: z.string().nullable(),
  crypto_currency: z.string().nullable(),
  entitlements: z.array(z.string()),
  clients: z.array(z.string()).nullable().meta({ description: "The apps it applies to; null = every app." }),
  archived_at: nullableDateTime,
  created_at: dateTime,
});
export const planList = z.looseObject({ data: z.array(plan) });

// Passkeys (routes/api/passkeys.ts; the options are @simplewebauthn/server's JSON forms of WebAuthn's)

const credentialDescriptor = z.looseObject({
  id: z.string(),
  type: z.literal("public-key"),
  transports: z.array(z.string()).optional(),
});
const extensions = z.record(z.string(), z.unknown());

export const passkeyCreationOptions = z
  .looseObject({
    rp: z.looseObject({ name: z.string(), id: z.string().optional() }),
    user: z.looseObject({ id: z.string(), name: z.string(), displayName: z.string() }),
    challenge: z.string(),
    pubKeyCredParams: z.array(z.looseObject({ alg: z.int(), type: z.literal("public-key") })),
    timeout: z.int().optional(),
    excludeCredentials: z.array(credentialDescriptor).optional(),
    authenticatorSelection: z
      .looseObject({
        authenticatorAttachment: z.string().optional(),
        requireResidentKey: z.boolean().optional(),
        residentKey: z.string().optional(),
        userVerification: z.string().optional(),
      })
      .optional(),
    hints: z.array(z.string()).optional(),
    attestation: z.string().optional(),
    attestationFormats: z.array(z.string()).optional(),
    extensions: extensions.optional(),
  })
  .meta({
    description:
      "WebAuthn PublicKeyCredentialCreationOptionsJSON: pass to navigator.credentials.create() (PublicKeyCredential." +
      "parseCreationOptionsFromJSON). A ceremony cookie is set; send the result to POST /api/v1/passkeys/registration.",
  });

export const passkeyRequestOptions = z
  .looseObject({
    challenge: z.string(),
    timeout: z.int().optional(),
    rpId: z.string().optional(),
    allowCredentials: z.array(credentialDescriptor).optional(),
    userVerification: z.string().optional(),
    hints: z.array(z.string()).optional(),
    extensions: extensions.optional(),
  })
  .meta({
    description:
      "WebAuthn PublicKeyCredentialRequestOptionsJSON: pass to navigator.credentials.get(). A ceremony cookie is set.",
  });

export const passkeyRegistered = z.looseObject({ passkey: z.looseObject({ id: z.string(), name: z.string() }) });

export const signedInRedirect = z
  .looseObject({ redirect: z.string().meta({ description: "Where the browser goes next (a same-site path or URL)." }) })
  .meta({ description: "Signed in: the session cookie is set." });

// The data export (libraries/privacy/export.ts; every field in docs/export.md)

const records = z.array(z.record(z.string(), z.unknown()));

export const dataExport = z
  .looseObject({
    schema: z.literal("tessera.export/1"),
    generatedAt: dateTime,
    user: z.record(z.string(), z.unknown()),
    emails: records,
    linkedIdentities: records,
    passkeys: records,
    twoStep: z.record(z.string(), z.unknown()),
    sessions: records,
    consents: records,
    rememberedConsents: records,
    roles: records,
    entitlements: records,
    purchases: records,
    billingCustomers: records,
    termsAcceptances: records,
    auditEvents: records,
  })
  .meta({
    description:
      "Everything Tessera holds about the user (docs/export.md names every field), as a download " +
      "(content-disposition: attachment). Metadata only for factors and sessions: no secret or token.",
  });

export const ADMIN_RESPONSE_SCHEMAS = {
  AdminUserList: adminUserList,
  AdminUserProfile: adminUserProfile,
  AdminUserStatus: adminUserStatus,
  AdminSessionsEnded: adminSessionsEnded,
  AdminTwoStepReset: adminTwoStepReset,
  AdminPasswordResetSent: adminPasswordResetSent,
  AdminLevel: adminLevel,
  Permission: permission,
  PermissionList: permissionList,
  PermissionDeleted: permissionDeleted,
  Role: role,
  RoleList: roleList,
  RoleDeleted: roleDeleted,
  UserRole: userRole,
  UserRoleList: userRoleList,
  RoleUnassigned: roleUnassigned,
  EntitlementGrant: entitlementGrant,
  EntitlementList: entitlementList,
  EntitlementRevoked: entitlementRevoked,
  Client: adminClient,
  ClientList: adminClientList,
  Webhook: webhook,
  WebhookDeliveryList: webhookDeliveryList,
  WebhookRedelivery: webhookRedelivery,
  IpSuspension: ipSuspension,
  IpSuspensionList: ipSuspensionList,
  ApiKey: apiKey,
  ApiKeyList: apiKeyList,
  ApiKeyCreated: apiKeyCreated,
  AccountLockList: accountLockList,
  AccountUnlocked: accountUnlocked,
  SigningKeyList: signingKeyList,
  SigningKeyRotated: signingKeyRotated,
  AuditEvent: auditEvent,
  AuditEventList: auditEventList,
  Provider: provider,
  ProviderList: providerList,
  Plan: plan,
  PlanList: planList,
  PasskeyCreationOptions: passkeyCreationOptions,
  PasskeyRequestOptions: passkeyRequestOptions,
  PasskeyRegistered: passkeyRegistered,
  SignedInRedirect: signedInRedirect,
  DataExport: dataExport,
} as const;
