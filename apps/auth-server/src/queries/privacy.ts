import {
  auditEvents,
  billingCustomers,
  clients,
  consents,
  type Executor,
  emailTokens,
  entitlements,
  identityProviders,
  passkeys,
  plans,
  purchases,
  recoveryCodes,
  refreshTokens,
  roles,
  sessions,
  termsAcceptances,
  totpFactors,
  userEntitlements,
  userIdentities,
  userRoles,
  users,
} from "@tessera/db";
import { and, asc, count, desc, eq, gt, isNull, max, min, sql } from "drizzle-orm";

/**
 * Reads for the data export (#16). Every select names its columns: a hash, secret or token column is never read, so
 * it cannot reach the document by accident when a table grows.
 */

export const exportProfile = (db: Executor, userId: string) =>
  db
    .select({
      id: users.id,
      email: users.email,
      emailVerifiedAt: users.emailVerifiedAt,
      hasPassword: sql<boolean>`${users.passwordHash} is not null`,
      passwordChangedAt: users.passwordChangedAt,
      displayName: users.displayName,
      isAdmin: users.isAdmin,
      adminRole: users.adminRole,
      isAnonymous: users.isAnonymous,
      createdAt: users.createdAt,
      updatedAt: users.updatedAt,
      disabledAt: users.disabledAt,
      deletedAt: users.deletedAt,
    })
    .from(users)
    .where(eq(users.id, userId))
    .then((rows) => rows[0] ?? null);

/** Email changes still waiting for their link (the new address), newest first. */
export const exportPendingEmails = (db: Executor, userId: string, now: Date) =>
  db
    .select({ address: emailTokens.newEmail, requestedAt: emailTokens.createdAt, expiresAt: emailTokens.expiresAt })
    .from(emailTokens)
    .where(
      and(
        eq(emailTokens.userId, userId),
        eq(emailTokens.purpose, "change_email"),
        isNull(emailTokens.usedAt),
        gt(emailTokens.expiresAt, now),
      ),
    )
    .orderBy(desc(emailTokens.createdAt));

export const exportIdentities = (db: Executor, userId: string) =>
  db
    .select({
      provider: identityProviders.slug,
      providerName: identityProviders.displayName,
      subject: userIdentities.subject,
      email: userIdentities.email,
      displayName: userIdentities.displayName,
      linkedAt: userIdentities.linkedAt,
      lastSignInAt: userIdentities.lastSignInAt,
    })
    .from(userIdentities)
    .innerJoin(identityProviders, eq(identityProviders.id, userIdentities.providerId))
    .where(eq(userIdentities.userId, userId))
    .orderBy(asc(userIdentities.linkedAt));

/** Passkeys: metadata only (never the public key or the signature counter). */
export const exportPasskeys = (db: Executor, userId: string) =>
  db
    .select({
      id: passkeys.id,
      name: passkeys.name,
      transports: passkeys.transports,
      backupEligible: passkeys.backupEligible,
      backedUp: passkeys.backedUp,
      createdAt: passkeys.createdAt,
      lastUsedAt: passkeys.lastUsedAt,
    })
    .from(passkeys)
    .where(eq(passkeys.userId, userId))
    .orderBy(asc(passkeys.createdAt));

/** Consent the user gave (and that stops the question at the next sign-in), per app. */
export const exportRememberedConsents = (db: Executor, userId: string) =>
  db
    .select({
      clientId: clients.clientId,
      clientName: clients.name,
      scopes: consents.scopes,
      grantedAt: consents.grantedAt,
      updatedAt: consents.updatedAt,
    })
    .from(consents)
    .innerJoin(clients, eq(clients.id, consents.clientId))
    .where(eq(consents.userId, userId))
    .orderBy(asc(consents.grantedAt));

export const exportTotp = (db: Executor, userId: string) =>
  db
    .select({ createdAt: totpFactors.createdAt, confirmedAt: totpFactors.confirmedAt })
    .from(totpFactors)
    .where(eq(totpFactors.userId, userId))
    .then((rows) => rows[0] ?? null);

export const exportRecoveryCodes = (db: Executor, userId: string) =>
  db
    .select({
      total: count(),
      unused: sql<number>`count(*) filter (where ${recoveryCodes.usedAt} is null)`.mapWith(Number),
      createdAt: max(recoveryCodes.createdAt),
    })
    .from(recoveryCodes)
    .where(eq(recoveryCodes.userId, userId))
    .then((rows) => rows[0] ?? { total: 0, unused: 0, createdAt: null });

export const exportSessions = (db: Executor, userId: string) =>
  db
    .select({
      id: sessions.id,
      createdAt: sessions.createdAt,
      authenticatedAt: sessions.authenticatedAt,
      lastSeenAt: sessions.lastSeenAt,
      expiresAt: sessions.expiresAt,
      idleExpiresAt: sessions.idleExpiresAt,
      revokedAt: sessions.revokedAt,
      revokedReason: sessions.revokedReason,
      ip: sessions.ip,
      userAgent: sessions.userAgent,
      amr: sessions.amr,
    })
    .from(sessions)
    .where(eq(sessions.userId, userId))
    .orderBy(desc(sessions.createdAt));

/** The apps the user signed in to, with the scopes granted (from the refresh-token chains; no token values). */
export const exportAppGrants = (db: Executor, userId: string) =>
  db
    .select({
      clientId: clients.clientId,
      clientName: clients.name,
      scope: refreshTokens.scope,
      firstGrantedAt: min(refreshTokens.createdAt),
      lastRefreshedAt: max(refreshTokens.createdAt),
    })
    .from(refreshTokens)
    .innerJoin(clients, eq(clients.id, refreshTokens.clientId))
    .where(eq(refreshTokens.userId, userId))
    .groupBy(clients.clientId, clients.name, refreshTokens.scope)
    .orderBy(asc(clients.clientId), asc(refreshTokens.scope));

export const exportRoles = (db: Executor, userId: string) =>
  db
    .select({
      role: roles.name,
      clientId: clients.clientId,
      grantedAt: userRoles.createdAt,
      expiresAt: userRoles.expiresAt,
      grantedByAdmin: sql<boolean>`${userRoles.grantedBy} is not null`,
    })
    .from(userRoles)
    .innerJoin(roles, eq(roles.id, userRoles.roleId))
    .leftJoin(clients, eq(clients.id, roles.clientId))
    .where(eq(userRoles.userId, userId))
    .orderBy(asc(roles.name));

export const exportEntitlements = (db: Executor, userId: string) =>
  db
    .select({
      entitlement: entitlements.name,
      source: userEntitlements.source,
      purchaseId: sql<string | null>`nullif(${userEntitlements.sourceRef}, '')`,
      clientIds: sql<
        string[] | null
      >`(select array_agg(c.client_id order by c.client_id) from ${clients} c where c.id = any(${userEntitlements.clientIds}))`,
      grantedAt: userEntitlements.createdAt,
      expiresAt: userEntitlements.expiresAt,
    })
    .from(userEntitlements)
    .innerJoin(entitlements, eq(entitlements.id, userEntitlements.entitlementId))
    .where(eq(userEntitlements.userId, userId))
    .orderBy(asc(entitlements.name), asc(userEntitlements.createdAt));

export const exportPurchases = (db: Executor, userId: string) =>
  db
    .select({
      id: purchases.id,
      plan: plans.name,
      provider: purchases.provider,
      providerRef: purchases.providerRef,
      kind: purchases.kind,
      status: purchases.status,
      currentPeriodEnd: purchases.currentPeriodEnd,
      cancelAtPeriodEnd: purchases.cancelAtPeriodEnd,
      paidAt: purchases.paidAt,
      refundedAt: purchases.refundedAt,
      receiptUrl: purchases.receiptUrl,
      createdAt: purchases.createdAt,
    })
    .from(purchases)
    .innerJoin(plans, eq(plans.id, purchases.planId))
    .where(eq(purchases.userId, userId))
    .orderBy(asc(purchases.createdAt));

export const exportBillingCustomers = (db: Executor, userId: string) =>
  db
    .select({
      provider: billingCustomers.provider,
      customerId: billingCustomers.customerId,
      createdAt: billingCustomers.createdAt,
    })
    .from(billingCustomers)
    .where(eq(billingCustomers.userId, userId))
    .orderBy(asc(billingCustomers.provider));

export const exportTermsAcceptances = (db: Executor, userId: string) =>
  db
    .select({
      termsVersion: termsAcceptances.termsVersion,
      privacyVersion: termsAcceptances.privacyVersion,
      context: termsAcceptances.context,
      acceptedAt: termsAcceptances.acceptedAt,
    })
    .from(termsAcceptances)
    .where(eq(termsAcceptances.userId, userId))
    .orderBy(asc(termsAcceptances.acceptedAt));

/** The audit events about the user (not those where the user acted on someone else), oldest first. */
export const exportAuditEvents = (db: Executor, userId: string) =>
  db
    .select({
      at: auditEvents.at,
      event: auditEvents.event,
      outcome: auditEvents.outcome,
      byAdmin: sql<boolean>`${auditEvents.actorId} is not null and ${auditEvents.actorId} <> ${auditEvents.userId}`,
      clientId: auditEvents.clientId,
      sessionId: auditEvents.sessionId,
      ip: auditEvents.ip,
      userAgent: auditEvents.userAgent,
      details: auditEvents.details,
    })
    .from(auditEvents)
    .where(eq(auditEvents.userId, userId))
    .orderBy(asc(auditEvents.id));
