import { sql } from "drizzle-orm";
import { boolean, index, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { users } from "./users.ts";

/**
 * Upstream sign-in (issue #15): identity providers the admin configured, the identities users linked, and the short
 * single-use records of one sign-in round trip.
 *
 * - An **identity provider** is an OpenID Connect provider found from its issuer's discovery document (`kind` oidc), an
 *   OAuth 2.0 provider with a user endpoint from a preset (`kind` oauth2, `preset` github | discord | twitch), or Steam
 *   through OpenID 2.0 (`kind` steam). `slug` names it in URLs, `idp_hint` and `amr`. The upstream client secret is
 *   encrypted with the master key (AES-256-GCM, the slug as associated data). `trusted_for_email`: only then is the
 *   upstream's `email_verified` believed. `client_ids` (public client ids) limits which apps' sign-in pages show its
 *   button; null shows it everywhere. `endpoints` overrides the preset's URLs (GitHub Enterprise, tests' stubs).
 * - A **user identity** is one upstream account (provider + subject) linked to one Tessera account.
 * - A **federation flow** is one half-finished step, found by the SHA-256 of a random value kept in a cookie:
 *   `upstream` (state, nonce and PKCE verifier of a redirect to the provider), `pending_link` (an upstream identity
 *   whose email matches an existing account, waiting for the owner to prove that account), `email_link` (the emailed
 *   proof of that account, usable only in the browser holding the pending link), `mfa` (the amr of a
 *   federated first factor waiting for the code step). Each is used once (`used_at`) and expires within minutes.
 */
export const identityProviders = pgTable(
  "identity_providers",
  {
    id: uuid().primaryKey().defaultRandom(),
    slug: text().notNull(),
    kind: text({ enum: ["oidc", "oauth2", "steam"] }).notNull(),
    preset: text(),
    displayName: text().notNull(),
    issuer: text(),
    clientId: text(),
    clientSecretEncrypted: text(),
    scopes: text().array().notNull().default(sql`'{}'::text[]`),
    endpoints: jsonb().$type<Record<string, string>>().notNull().default({}),
    trustedForEmail: boolean().notNull().default(false),
    clientIds: text().array(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    disabledAt: timestamp({ withTimezone: true }),
  },
  (t) => [uniqueIndex("identity_providers_slug_key").on(t.slug)],
);

export const userIdentities = pgTable(
  "user_identities",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    providerId: uuid()
      .notNull()
      .references(() => identityProviders.id, { onDelete: "cascade" }),
    subject: text().notNull(),
    /** The upstream's email and display name at the last sign-in, for the account page only. */
    email: text(),
    displayName: text(),
    linkedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    lastSignInAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex("user_identities_provider_subject_key").on(t.providerId, t.subject),
    index("user_identities_user_idx").on(t.userId),
  ],
);

export const federationFlows = pgTable(
  "federation_flows",
  {
    id: uuid().primaryKey().defaultRandom(),
    tokenHash: text().notNull(),
    purpose: text({ enum: ["upstream", "pending_link", "email_link", "mfa"] }).notNull(),
    providerId: uuid()
      .notNull()
      .references(() => identityProviders.id, { onDelete: "cascade" }),
    /** upstream: the account to link to (a link started from the account page); pending_link: the existing account. */
    userId: uuid().references(() => users.id, { onDelete: "cascade" }),
    data: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
    usedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex("federation_flows_token_hash_key").on(t.tokenHash),
    index("federation_flows_expires_at_idx").on(t.expiresAt),
  ],
);
