import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import * as q from "../../queries/privacy.ts";
import { audit, type RequestMeta } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { type ReauthInput, requireReauth } from "./reauth.ts";

/** The version of the export document; bump it (and docs/export.md) when a field changes meaning or goes away. */
export const EXPORT_SCHEMA = "tessera.export/1";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Dates as ISO 8601 strings, recursively; everything else as it is (the queries return only JSON-able values). */
function plain(value: unknown): Json {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return (value ?? null) as Json;
}

/**
 * Everything Tessera holds about one user, as one JSON document (docs/export.md describes every field). Metadata only
 * for factors and sessions: no password hash, TOTP secret, recovery code, token or token hash is ever read (the
 * queries in queries/privacy.ts name their columns). USER_NOT_FOUND for an unknown or deleted account.
 */
export async function buildExport(deps: CoreContext, userId: string): Promise<Record<string, Json>> {
  const profile = UUID.test(userId) ? await q.exportProfile(deps.db, userId) : null;
  if (!profile || profile.deletedAt) throw new AppError("USER_NOT_FOUND");
  const now = deps.clock.now();
  const [
    pending,
    identities,
    keys,
    remembered,
    totp,
    codes,
    sessions,
    apps,
    roles,
    ents,
    purchases,
    customers,
    terms,
    events,
  ] = await Promise.all([
    q.exportPendingEmails(deps.db, userId, now),
    q.exportIdentities(deps.db, userId),
    q.exportPasskeys(deps.db, userId),
    q.exportRememberedConsents(deps.db, userId),
    q.exportTotp(deps.db, userId),
    q.exportRecoveryCodes(deps.db, userId),
    q.exportSessions(deps.db, userId),
    q.exportAppGrants(deps.db, userId),
    q.exportRoles(deps.db, userId),
    q.exportEntitlements(deps.db, userId),
    q.exportPurchases(deps.db, userId),
    q.exportBillingCustomers(deps.db, userId),
    q.exportTermsAcceptances(deps.db, userId),
    q.exportAuditEvents(deps.db, userId),
  ]);
  const { deletedAt: _deleted, ...user } = profile;
  return {
    schema: EXPORT_SCHEMA,
    generatedAt: now.toISOString(),
    user: plain(user),
    emails: plain([
      { address: profile.email, primary: true, verifiedAt: profile.emailVerifiedAt, pendingUntil: null },
      ...pending.map((p) => ({ address: p.address, primary: false, verifiedAt: null, pendingUntil: p.expiresAt })),
    ]),
    linkedIdentities: plain(identities),
    passkeys: plain(keys),
    twoStep: plain({
      totp: totp
        ? { enabled: totp.confirmedAt !== null, createdAt: totp.createdAt, confirmedAt: totp.confirmedAt }
        : null,
      recoveryCodes: { total: codes.total, unused: codes.unused, createdAt: codes.createdAt },
    }),
    sessions: plain(sessions),
    // The apps the user signed in to with offline access, with the scopes granted (their refresh-token chains).
    consents: plain(apps),
    // Consent the user approved on the consent page and Tessera remembers, per app (#13).
    rememberedConsents: plain(remembered),
    roles: plain(roles),
    entitlements: plain(ents),
    purchases: plain(purchases),
    billingCustomers: plain(customers),
    termsAcceptances: plain(terms),
    auditEvents: plain(events),
  };
}

/** The signed-in user's own export, after re-authentication (requireReauth); audited as `user.data_exported`. */
export async function exportOwnData(
  deps: CoreContext,
  meta: RequestMeta,
  input: ReauthInput,
): Promise<Record<string, Json>> {
  const reauth = await requireReauth(deps, meta, input);
  const document = await buildExport(deps, input.user.id);
  await audit(deps.db, meta, {
    event: "user.data_exported",
    outcome: "success",
    userId: input.user.id,
    details: { reauth },
  });
  return document;
}

/** An admin's export of a user (the admin API), audited as `admin.user_exported` with the admin as actor. */
export async function exportUserAsAdmin(
  deps: CoreContext,
  userId: string,
  actor: Actor,
): Promise<Record<string, Json>> {
  const document = await buildExport(deps, userId);
  await audit(deps.db, actor.meta, {
    event: "admin.user_exported",
    outcome: "success",
    actorId: actor.actorId,
    userId,
    ...(actor.via ? { details: { via: actor.via } } : {}),
  });
  return document;
}
