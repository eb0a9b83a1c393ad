import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { clients } from "./clients.ts";
import { users } from "./users.ts";

/**
 * What users may do in each app, and what they own across apps.
 *
 * - A **permission** belongs to one client app (`chat:mute` in the game is not `chat:mute` in the shop).
 * - A **role** belongs to one client app and bundles that app's permissions, or is global (`client_id` null) and is
 *   visible to every app. Names are unique per app (global names unique among global roles) and renamable; ids are
 *   stable and are what everything else refers to.
 * - A **user role** is an assignment, optionally expiring (an expired row simply stops counting; no sweep needed).
 * - An **entitlement** is a named thing a user can own ("premium", "no-ads"); a **user entitlement** is one grant of it,
 *   from an admin or from a purchase (`source` + `source_ref`, e.g. the purchase id), optionally limited to some apps
 *   (`client_ids`, internal client uuids; null = every app) and optionally expiring. A user owns an entitlement for an
 *   app while any unexpired grant covers that app.
 */
export const permissions = pgTable(
  "permissions",
  {
    id: uuid().primaryKey().defaultRandom(),
    clientId: uuid()
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    name: text().notNull(),
    description: text().notNull().default(""),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("permissions_client_name_key").on(t.clientId, t.name)],
);

export const roles = pgTable(
  "roles",
  {
    id: uuid().primaryKey().defaultRandom(),
    /** Null for a global role. */
    clientId: uuid().references(() => clients.id, { onDelete: "cascade" }),
    name: text().notNull(),
    description: text().notNull().default(""),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("roles_client_name_key").on(t.clientId, t.name).where(sql`${t.clientId} is not null`),
    uniqueIndex("roles_global_name_key").on(t.name).where(sql`${t.clientId} is null`),
  ],
);

/** A role's permissions; both sides must belong to the same app (enforced by the library, not by SQL). */
export const rolePermissions = pgTable(
  "role_permissions",
  {
    roleId: uuid()
      .notNull()
      .references(() => roles.id, { onDelete: "cascade" }),
    permissionId: uuid()
      .notNull()
      .references(() => permissions.id, { onDelete: "cascade" }),
  },
  (t) => [
    primaryKey({ columns: [t.roleId, t.permissionId] }),
    index("role_permissions_permission_idx").on(t.permissionId),
  ],
);

export const userRoles = pgTable(
  "user_roles",
  {
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    roleId: uuid()
      .notNull()
      .references(() => roles.id, { onDelete: "cascade" }),
    expiresAt: timestamp({ withTimezone: true }),
    /** The admin (user id) who made the assignment, when one did. */
    grantedBy: uuid(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.roleId] }), index("user_roles_role_idx").on(t.roleId)],
);

export const entitlements = pgTable(
  "entitlements",
  {
    id: uuid().primaryKey().defaultRandom(),
    name: text().notNull(),
    description: text().notNull().default(""),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("entitlements_name_key").on(t.name)],
);

export const userEntitlements = pgTable(
  "user_entitlements",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    entitlementId: uuid()
      .notNull()
      .references(() => entitlements.id, { onDelete: "cascade" }),
    /** Internal ids (`clients.id`) of the apps this grant is limited to; null = every app. */
    clientIds: uuid().array(),
    expiresAt: timestamp({ withTimezone: true }),
    source: text({ enum: ["admin", "purchase"] }).notNull(),
    /** For `purchase`: the purchase's id in Tessera; for `admin`: empty string (one admin grant per entitlement). */
    sourceRef: text().notNull().default(""),
    grantedBy: uuid(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("user_entitlements_grant_key").on(t.userId, t.entitlementId, t.source, t.sourceRef),
    index("user_entitlements_entitlement_idx").on(t.entitlementId),
    check("user_entitlements_client_ids_nonempty", sql`${t.clientIds} is null or cardinality(${t.clientIds}) > 0`),
  ],
);

/**
 * One row (id 1): the version of the catalog (roles, permissions, role permissions, entitlement names). Every change to
 * the catalog bumps it in the same transaction (upsert, so no seed row is needed). Each server instance keeps the
 * catalog in memory and learns of a change from this number, which the token path reads in the same statement as the
 * user's assignments: no extra query, no LISTEN connection, and no window in which an instance serves a stale name.
 */
export const authorizationCatalog = pgTable(
  "authorization_catalog",
  {
    id: smallint().primaryKey().default(1),
    version: bigint({ mode: "number" }).notNull().default(0),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [check("authorization_catalog_single_row", sql`${t.id} = 1`)],
);
