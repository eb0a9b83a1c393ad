import { clients, type Executor, plans } from "@tessera/db";
import { and, asc, eq, inArray, isNull, sql } from "drizzle-orm";

export type PlanRow = typeof plans.$inferSelect;
export type NewPlanRow = typeof plans.$inferInsert;

/** Inserts a plan; null when the name is taken. */
export async function insertPlan(db: Executor, row: NewPlanRow): Promise<PlanRow | null> {
  const [created] = await db.insert(plans).values(row).onConflictDoNothing({ target: plans.name }).returning();
  return created ?? null;
}

export async function findPlanByName(db: Executor, name: string): Promise<PlanRow | null> {
  const [row] = await db.select().from(plans).where(eq(plans.name, name)).limit(1);
  return row ?? null;
}

export async function findPlanById(db: Executor, id: string): Promise<PlanRow | null> {
  const [row] = await db.select().from(plans).where(eq(plans.id, id)).limit(1);
  return row ?? null;
}

export async function listPlans(db: Executor, options: { includeArchived: boolean }): Promise<PlanRow[]> {
  return db
    .select()
    .from(plans)
    .where(options.includeArchived ? undefined : isNull(plans.archivedAt))
    .orderBy(asc(plans.name))
    .limit(1000);
}

/** Archives a plan (no new checkouts; existing purchases keep their grants). Null when absent or already archived. */
export async function archivePlan(db: Executor, id: string, now: Date): Promise<PlanRow | null> {
  const [row] = await db
    .update(plans)
    .set({ archivedAt: now, updatedAt: now })
    .where(and(eq(plans.id, id), isNull(plans.archivedAt)))
    .returning();
  return row ?? null;
}

/** Public client ids for internal ids (for showing a plan's app limits). */
export async function clientIdsByInternalId(db: Executor, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db.select({ clientId: clients.clientId }).from(clients).where(inArray(clients.id, ids));
  return rows.map((r) => r.clientId).sort();
}

/**
 * Whether an origin (`https://shop.example`) belongs to an enabled client: one of its redirect or post-logout URIs
 * is on that origin. Checkout only ever sends the browser back to such an app.
 */
export async function isRegisteredOrigin(db: Executor, origin: string): Promise<boolean> {
  const [row] = await db
    .select({ id: clients.id })
    .from(clients)
    .where(
      and(
        isNull(clients.disabledAt),
        sql`exists (select 1 from unnest(${clients.redirectUris} || ${clients.postLogoutRedirectUris}) as u(uri)
          where u.uri = ${origin} or left(u.uri, ${origin.length + 1}) = ${`${origin}/`})`,
      ),
    )
    .limit(1);
  return Boolean(row);
}

/** Changes what a plan says and grants (not its prices or kind). Null when absent or archived. */
export async function updatePlanRow(
  db: Executor,
  id: string,
  patch: Pick<NewPlanRow, "description" | "entitlements" | "clientIds">,
  now: Date,
): Promise<PlanRow | null> {
  const [row] = await db
    .update(plans)
    .set({ ...patch, updatedAt: now })
    .where(and(eq(plans.id, id), isNull(plans.archivedAt)))
    .returning();
  return row ?? null;
}
