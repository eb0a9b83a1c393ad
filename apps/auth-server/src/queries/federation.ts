import { type Executor, federationFlows, identityProviders, userIdentities, users } from "@tessera/db";
import { and, asc, count, eq, gt, isNull } from "drizzle-orm";

export type IdentityProviderRow = typeof identityProviders.$inferSelect;
export type UserIdentityRow = typeof userIdentities.$inferSelect;
export type FederationFlowRow = typeof federationFlows.$inferSelect;
type UserRow = typeof users.$inferSelect;

export async function insertIdentityProvider(
  db: Executor,
  row: typeof identityProviders.$inferInsert,
): Promise<IdentityProviderRow | null> {
  const [created] = await db.insert(identityProviders).values(row).onConflictDoNothing().returning();
  return created ?? null;
}

export async function findIdentityProviderBySlug(db: Executor, slug: string): Promise<IdentityProviderRow | null> {
  const [row] = await db.select().from(identityProviders).where(eq(identityProviders.slug, slug)).limit(1);
  return row ?? null;
}

export async function findIdentityProviderById(db: Executor, id: string): Promise<IdentityProviderRow | null> {
  const [row] = await db.select().from(identityProviders).where(eq(identityProviders.id, id)).limit(1);
  return row ?? null;
}

export async function listIdentityProviders(
  db: Executor,
  options: { enabledOnly: boolean },
): Promise<IdentityProviderRow[]> {
  return db
    .select()
    .from(identityProviders)
    .where(options.enabledOnly ? isNull(identityProviders.disabledAt) : undefined)
    .orderBy(asc(identityProviders.displayName), asc(identityProviders.slug));
}

export async function setIdentityProviderDisabled(
  db: Executor,
  id: string,
  disabledAt: Date | null,
  now: Date,
): Promise<IdentityProviderRow | null> {
  const [row] = await db
    .update(identityProviders)
    .set({ disabledAt, updatedAt: now })
    .where(eq(identityProviders.id, id))
    .returning();
  return row ?? null;
}

export async function findIdentity(db: Executor, providerId: string, subject: string): Promise<UserIdentityRow | null> {
  const [row] = await db
    .select()
    .from(userIdentities)
    .where(and(eq(userIdentities.providerId, providerId), eq(userIdentities.subject, subject)))
    .limit(1);
  return row ?? null;
}

/** Links an identity; null when that provider+subject is already linked (to anyone). */
export async function insertIdentity(
  db: Executor,
  row: typeof userIdentities.$inferInsert,
): Promise<UserIdentityRow | null> {
  const [created] = await db.insert(userIdentities).values(row).onConflictDoNothing().returning();
  return created ?? null;
}

export async function touchIdentity(db: Executor, id: string, now: Date, email: string | null): Promise<void> {
  await db.update(userIdentities).set({ lastSignInAt: now, email }).where(eq(userIdentities.id, id));
}

export async function listIdentitiesOfUser(
  db: Executor,
  userId: string,
): Promise<Array<UserIdentityRow & { providerSlug: string; providerName: string }>> {
  const rows = await db
    .select({ identity: userIdentities, slug: identityProviders.slug, name: identityProviders.displayName })
    .from(userIdentities)
    .innerJoin(identityProviders, eq(identityProviders.id, userIdentities.providerId))
    .where(eq(userIdentities.userId, userId))
    .orderBy(asc(userIdentities.linkedAt));
  return rows.map((r) => ({ ...r.identity, providerSlug: r.slug, providerName: r.name }));
}

export async function countIdentitiesOfUser(db: Executor, userId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(userIdentities).where(eq(userIdentities.userId, userId));
  return row?.n ?? 0;
}

export async function deleteIdentity(db: Executor, userId: string, id: string): Promise<UserIdentityRow | null> {
  const [row] = await db
    .delete(userIdentities)
    .where(and(eq(userIdentities.id, id), eq(userIdentities.userId, userId)))
    .returning();
  return row ?? null;
}

/** A federated account: no password (it signs in through its identity until the owner sets one by a reset). */
export async function insertFederatedUser(
  db: Executor,
  row: { email: string; emailVerifiedAt: Date | null; displayName: string | null; now: Date },
): Promise<UserRow | null> {
  const [created] = await db
    .insert(users)
    .values({
      email: row.email,
      emailVerifiedAt: row.emailVerifiedAt,
      passwordHash: null,
      displayName: row.displayName,
      createdAt: row.now,
      updatedAt: row.now,
    })
    .onConflictDoNothing()
    .returning();
  return created ?? null;
}

export async function insertFlow(db: Executor, row: typeof federationFlows.$inferInsert): Promise<void> {
  await db.insert(federationFlows).values(row);
}

/** Spends a live flow of this purpose, atomically: the one caller that gets the row back may act on it. */
export async function consumeFlow(
  db: Executor,
  tokenHash: string,
  purpose: FederationFlowRow["purpose"],
  now: Date,
): Promise<FederationFlowRow | null> {
  const [row] = await db
    .update(federationFlows)
    .set({ usedAt: now })
    .where(
      and(
        eq(federationFlows.tokenHash, tokenHash),
        eq(federationFlows.purpose, purpose),
        isNull(federationFlows.usedAt),
        gt(federationFlows.expiresAt, now),
      ),
    )
    .returning();
  return row ?? null;
}

export async function findLiveFlow(
  db: Executor,
  tokenHash: string,
  purpose: FederationFlowRow["purpose"],
  now: Date,
): Promise<FederationFlowRow | null> {
  const [row] = await db
    .select()
    .from(federationFlows)
    .where(
      and(
        eq(federationFlows.tokenHash, tokenHash),
        eq(federationFlows.purpose, purpose),
        isNull(federationFlows.usedAt),
        gt(federationFlows.expiresAt, now),
      ),
    )
    .limit(1);
  return row ?? null;
}

/** Changes a provider's settings (not its slug or kind). Null when absent. */
export async function updateIdentityProvider(
  db: Executor,
  id: string,
  patch: Partial<
    Pick<
      typeof identityProviders.$inferInsert,
      "displayName" | "issuer" | "clientId" | "clientSecretEncrypted" | "scopes" | "trustedForEmail" | "clientIds"
    >
  >,
  now: Date,
): Promise<IdentityProviderRow | null> {
  const [row] = await db
    .update(identityProviders)
    .set({ ...patch, updatedAt: now })
    .where(eq(identityProviders.id, id))
    .returning();
  return row ?? null;
}
