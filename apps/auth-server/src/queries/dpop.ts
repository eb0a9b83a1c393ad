import { dpopBindings, dpopProofs, type Executor } from "@tessera/db";
import { eq, lt, sql } from "drizzle-orm";
import { prepared } from "./prepared.ts";

/** Records a proof id; false when it was already recorded (a replay). */
export async function recordProofJti(db: Executor, jtiHash: string, expiresAt: Date): Promise<boolean> {
  const rows = await db
    .insert(dpopProofs)
    .values({ jtiHash, expiresAt })
    .onConflictDoNothing()
    .returning({ jtiHash: dpopProofs.jtiHash });
  return rows.length === 1;
}

/** Deletes up to `limit` proof ids past their expiry. */
export async function deleteExpiredProofs(db: Executor, now: Date, limit: number): Promise<void> {
  await db.execute(
    sql`delete from ${dpopProofs} where ${dpopProofs.jtiHash} in (select ${dpopProofs.jtiHash} from ${dpopProofs} where ${lt(dpopProofs.expiresAt, now)} limit ${limit})`,
  );
}

export async function insertDpopBinding(db: Executor, row: typeof dpopBindings.$inferInsert): Promise<void> {
  await db.insert(dpopBindings).values(row).onConflictDoNothing();
}

/** The key thumbprint a refresh-token chain is bound to, or null when it is not bound. */
export async function findDpopBinding(db: Executor, chainId: string): Promise<string | null> {
  const [row] = await prepared(db, "dpop_binding_by_chain", (d) =>
    d
      .select({ jkt: dpopBindings.jkt })
      .from(dpopBindings)
      .where(eq(dpopBindings.chainId, sql.placeholder("chainId")))
      .limit(1)
      .prepare("dpop_binding_by_chain"),
  ).execute({ chainId });
  return row?.jkt ?? null;
}
