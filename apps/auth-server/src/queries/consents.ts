import { clients, consents, type Executor, refreshTokens } from "@tessera/db";
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import { notifyUserChange } from "./owners-cache.ts";

export async function findConsentScopes(db: Executor, userId: string, clientId: string): Promise<string[] | null> {
  const [row] = await db
    .select({ scopes: consents.scopes })
    .from(consents)
    .where(and(eq(consents.userId, userId), eq(consents.clientId, clientId)))
    .limit(1);
  return row?.scopes ?? null;
}

/** Records an approval; an existing row for the pair keeps its scopes and gains the new ones (one statement). */
export async function upsertConsent(
  db: Executor,
  values: { userId: string; clientId: string; scopes: string[]; now: Date },
): Promise<void> {
  await db
    .insert(consents)
    .values({ ...values, grantedAt: values.now, updatedAt: values.now })
    .onConflictDoUpdate({
      target: [consents.userId, consents.clientId],
      set: {
        scopes: sql`array(select distinct s from unnest(${consents.scopes} || excluded.scopes) as s order by s)`,
        updatedAt: values.now,
      },
    });
}

export interface ConsentListRow {
  clientId: string;
  name: string;
  scopes: string[];
  grantedAt: Date;
}

/** The applications a user approved, by name. */
export async function selectUserConsents(db: Executor, userId: string): Promise<ConsentListRow[]> {
  return db
    .select({ clientId: clients.clientId, name: clients.name, scopes: consents.scopes, grantedAt: consents.grantedAt })
    .from(consents)
    .innerJoin(clients, eq(clients.id, consents.clientId))
    .where(eq(consents.userId, userId))
    .orderBy(asc(clients.name));
}

/** Deletes a user's consent for a client (by public client_id); the client's row id, or null when there was none. */
export async function deleteConsent(db: Executor, userId: string, publicClientId: string): Promise<string | null> {
  const [row] = await db
    .delete(consents)
    .where(
      and(
        eq(consents.userId, userId),
        eq(
          consents.clientId,
          sql`(select ${clients.id} from ${clients} where ${clients.clientId} = ${publicClientId})`,
        ),
      ),
    )
    .returning({ clientId: consents.clientId });
  return row?.clientId ?? null;
}

/** Revokes every live refresh token of one client for one user, in all of the user's sessions. */
export async function revokeUserClientTokens(db: Executor, userId: string, clientId: string, now: Date) {
  const rows = await db
    .update(refreshTokens)
    .set({ revokedAt: now })
    .where(and(eq(refreshTokens.userId, userId), eq(refreshTokens.clientId, clientId), isNull(refreshTokens.revokedAt)))
    .returning({ id: refreshTokens.id });
  if (rows.length > 0) await notifyUserChange(db, userId);
  return rows.length;
}
