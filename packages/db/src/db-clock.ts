import { performance } from "node:perf_hooks";
import type postgres from "postgres";
import { DATABASE_CLOCK, deadlineRemainingMs } from "./deadline.ts";

/** How often the offset between this process's clock and the database server's is measured again. */
const RESAMPLE_MS = 60_000;
/** A sample whose round trip took longer than twice this is not precise enough to replace a good one. */
const MAX_UNCERTAINTY_MS = 50;

/**
 * This process's view of the database server's clock, for statements that must judge themselves late.
 *
 * A request deadline stops what is still in this process (deadline.ts), but not a statement already written to the
 * socket: with the network black-holed, postgres.js has handed the bytes to the kernel, the request answers 503 at its
 * deadline, and the kernel delivers the statement when the network returns, minutes later. A single statement that
 * writes (no transaction whose COMMIT this process withholds) must therefore carry its deadline, in the server's clock,
 * and refuse to write once `clock_timestamp()` has passed it.
 *
 * The offset is measured the NTP way: `clock_timestamp()` read between two local readings is taken as the middle one's
 * moment, give or take half the round trip. The deadline handed out is moved earlier by that half, so a statement
 * never writes after the request's own deadline because of the estimate (it may refuse a little early, and the
 * caller then takes its guarded path).
 */
export class DatabaseClock {
  /** Server clock minus local wall clock, in ms. */
  private offsetMs: number | undefined;
  private uncertaintyMs = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** One measurement over `client` (outside any request deadline). Keeps it if it is at least as precise as needed. */
  async sample(client: postgres.Sql<Record<string, never>>): Promise<void> {
    const before = Date.now();
    const beforeMono = performance.now();
    const [row] = await client.unsafe<{ ms: number }[]>(
      "select (extract(epoch from clock_timestamp()) * 1000)::float8 as ms",
    );
    const roundTrip = performance.now() - beforeMono;
    if (!row) return;
    const uncertainty = roundTrip / 2 + 1; // + 1: clock_timestamp() has microseconds, Date.now() milliseconds
    if (this.offsetMs !== undefined && uncertainty > Math.max(MAX_UNCERTAINTY_MS, this.uncertaintyMs * 2)) return;
    this.offsetMs = Number(row.ms) - (before + roundTrip / 2);
    this.uncertaintyMs = uncertainty;
  }

  /** Measures now (three times, keeping the most precise) and then every minute, until `stop()`. */
  watch(client: postgres.Sql<Record<string, never>>): void {
    const run = async (samples: number) => {
      for (let i = 0; i < samples && !this.stopped; i++) {
        await this.sample(client).catch(() => {});
      }
      if (this.stopped) return;
      this.timer = setTimeout(() => void run(1), RESAMPLE_MS);
      this.timer.unref();
    };
    void run(3);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * The current request's deadline in the server's clock, as an ISO timestamp; null outside any deadline scope (no
   * deadline to keep); undefined while the offset is not known yet (the caller must take a path that does not need it).
   */
  requestDeadline(): string | null | undefined {
    const remaining = deadlineRemainingMs();
    if (remaining === undefined) return null;
    if (this.offsetMs === undefined) return undefined;
    return new Date(Date.now() + remaining + this.offsetMs - this.uncertaintyMs).toISOString();
  }
}

/**
 * The current request's deadline in the database server's clock for statements sent through `client` (a Drizzle
 * database's postgres.js client): see DatabaseClock.requestDeadline. undefined too when the client has no clock.
 */
export function requestDeadlineInDatabaseTime(client: unknown): string | null | undefined {
  const clock = (client as { [DATABASE_CLOCK]?: DatabaseClock } | null)?.[DATABASE_CLOCK];
  return clock ? clock.requestDeadline() : undefined;
}
