import { boolean, integer, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

/**
 * Registered client applications (the tenants). The secret is 256 bits of CSPRNG output, so SHA-256 is enough
 * (no offline guessing is feasible) and keeps the token endpoint fast; a slow hash here would cap token traffic.
 */
export const clients = pgTable(
  "clients",
  {
    id: uuid().primaryKey().defaultRandom(),
    clientId: text().notNull(),
    name: text().notNull(),
    logoUrl: text(),
    /** The accent colour of the hosted pages for this client, `#rrggbb` (validated on input and again on use). */
    brandColor: text(),
    /** Null for a public client (token_endpoint_auth_method none): it has no secret (RFC 8252 8.5). */
    clientSecretHash: text(),
    previousSecretHash: text(),
    previousSecretExpiresAt: timestamp({ withTimezone: true }),
    redirectUris: text().array().notNull().default([]),
    postLogoutRedirectUris: text().array().notNull().default([]),
    backchannelLogoutUri: text(),
    allowedScopes: text().array().notNull().default(["openid", "profile", "email", "offline_access"]),
    grantTypes: text().array().notNull().default(["authorization_code", "refresh_token"]),
    firstParty: boolean().notNull().default(false),
    /** Server-to-server sign-in with user credentials (trusted first-party games). Off by default. */
    directSignInEnabled: boolean().notNull().default(false),
    /** Guest accounts (POST /api/v1/guest) for this client. Off by default. */
    guestAccountsEnabled: boolean().notNull().default(false),
    idTokenSignedResponseAlg: text({ enum: ["RS256", "ES256", "EdDSA"] })
      .notNull()
      .default("RS256"),
    accessTokenTtlSeconds: integer(),
    /** RFC 7591: client_secret_basic (client_secret_post is accepted too) or none (a public client: SPA, native app). */
    tokenEndpointAuthMethod: text({ enum: ["client_secret_basic", "client_secret_post", "none"] })
      .notNull()
      .default("client_secret_basic"),
    /** Browser origins (scheme://host[:port]) allowed to call /token, /userinfo and /revoke with CORS. */
    webOrigins: text().array().notNull().default([]),
    /** RFC 9449: every token request of this client must carry a DPoP proof (sender-constrained tokens). */
    requireDpop: boolean().notNull().default(false),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    disabledAt: timestamp({ withTimezone: true }),
  },
  (t) => [uniqueIndex("clients_client_id_key").on(t.clientId)],
);
