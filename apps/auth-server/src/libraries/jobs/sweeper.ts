import type { CoreContext, Logger } from "../../context.ts";
import {
  deleteGarbageBatch,
  SWEEP_TARGETS,
  type SweepTarget,
  tryLockSweeper,
} from "../../queries/admin-maintenance.ts";
import { scrubAuditPiiBatch } from "../../queries/audit-retention.ts";
import { deleteIdleGuestsBatch } from "../../queries/guests.ts";
import { addSeconds } from "../clock.ts";

/**
 * Rows per DELETE. Small enough that each statement is short (no long row locks, no replication lag spike), large
 * enough that a backlog of millions clears in minutes.
 */
export const SWEEP_BATCH_SIZE = 1000;
/** Batches per table per run; whatever is left waits for the next run, so one run never monopolizes the database. */
const MAX_BATCHES_PER_TABLE = 100;

export interface SweepReport {
  /** False when another instance held the lock, so this one did nothing. */
  ran: boolean;
  /** Rows deleted per table; `guest_users`: guest accounts idle for GUEST_IDLE_DAYS (with their sessions). */
  deleted: Record<SweepTarget | "guest_users", number>;
  /** Privacy (#16): audit events older than AUDIT_PII_RETENTION_DAYS stripped of email, IP and user agent. */
  scrubbed: { audit_events: number };
}

/**
 * One sweep: deletes what expired or was revoked/used/delivered more than `jobs.sweeperRetentionSeconds` ago, in
 * batches. Expiry itself is enforced on every use; this only reclaims space. Each batch is its own short transaction
 * that first takes a cluster-wide advisory lock with pg_try_advisory_xact_lock: when another instance holds it, this
 * one stops at once, so at any moment only one instance sweeps and no row is deleted twice.
 */
export async function sweep(deps: CoreContext, options: { batchSize?: number } = {}): Promise<SweepReport> {
  const batchSize = options.batchSize ?? SWEEP_BATCH_SIZE;
  const cutoff = addSeconds(deps.clock.now(), -deps.config.jobs.sweeperRetentionSeconds);
  const deleted = Object.fromEntries([...Object.keys(SWEEP_TARGETS), "guest_users"].map((k) => [k, 0])) as Record<
    SweepTarget | "guest_users",
    number
  >;
  const scrubbed = { audit_events: 0 };
  // Sessions first: deleting one cascades to its refresh tokens and codes.
  for (const target of Object.keys(SWEEP_TARGETS) as SweepTarget[]) {
    for (let i = 0; i < MAX_BATCHES_PER_TABLE; i++) {
      const count = await deps.db.transaction(async (tx) => {
        if (!(await tryLockSweeper(tx))) return null;
        return deleteGarbageBatch(tx, target, cutoff, batchSize);
      });
      if (count === null) return { ran: false, deleted, scrubbed };
      deleted[target] += count;
      if (count < batchSize) break;
    }
  }
  // Guests idle for GUEST_IDLE_DAYS (libraries/accounts/guests.ts): their own cutoff, same lock and batches.
  const guestCutoff = addSeconds(deps.clock.now(), -deps.config.grants.guestIdleDays * 86400);
  for (let i = 0; i < MAX_BATCHES_PER_TABLE; i++) {
    const count = await deps.db.transaction(async (tx) => {
      if (!(await tryLockSweeper(tx))) return null;
      return deleteIdleGuestsBatch(tx, guestCutoff, batchSize);
    });
    if (count === null) return { ran: false, deleted, scrubbed };
    deleted.guest_users += count;
    if (count < batchSize) break;
  }
  // Privacy (#16): personal data in old audit events (0 days: kept).
  const retentionDays = deps.config.privacy.auditPiiRetentionDays;
  const piiCutoff = addSeconds(deps.clock.now(), -retentionDays * 86400);
  for (let i = 0; retentionDays > 0 && i < MAX_BATCHES_PER_TABLE; i++) {
    const count = await deps.db.transaction(async (tx) => {
      if (!(await tryLockSweeper(tx))) return null;
      return scrubAuditPiiBatch(tx, piiCutoff, batchSize);
    });
    if (count === null) return { ran: false, deleted, scrubbed };
    scrubbed.audit_events += count;
    if (count < batchSize) break;
  }
  return { ran: true, deleted, scrubbed };
}

export interface Sweeper {
  stop(): Promise<void>;
}

/**
 * Runs `sweep` every `jobs.sweeperIntervalSeconds` (first run one interval after start) until stopped. A failed run
 * (database down) is logged and retried at the next interval; it never takes the server down.
 */
export function startSweeper(deps: CoreContext, log: Logger): Sweeper {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(run, deps.config.jobs.sweeperIntervalSeconds * 1000);
    timer.unref();
  };
  const run = () => {
    running = (async () => {
      try {
        const report = await sweep(deps);
        const total = Object.values(report.deleted).reduce((a, b) => a + b, 0);
        if (report.ran && total > 0) log.info({ deleted: report.deleted }, "sweeper deleted expired rows");
        else if (!report.ran) log.debug("sweeper skipped: another instance holds the lock");
      } catch (error) {
        log.warn({ err: { message: (error as Error).message } }, "sweeper run failed; retrying at the next interval");
      } finally {
        running = undefined;
        schedule();
      }
    })();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
