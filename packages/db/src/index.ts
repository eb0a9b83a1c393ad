import { spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { DatabaseClock } from "./db-clock.ts";
import { withDeadlines } from "./deadline.ts";
import { countingPglite, countingPostgres, PoolCounter, type PoolStats } from "./pool-stats.ts";
import * as schema from "./schema/index.ts";

export { requestDeadlineInDatabaseTime } from "./db-clock.ts";
export {
  DEADLINE_EXCEEDED,
  DeadlineExceededError,
  deadlineRemainingMs,
  outsideDeadline,
  runWithDeadline,
} from "./deadline.ts";
export type { PoolStats } from "./pool-stats.ts";
export * from "./schema/index.ts";
export { schema };

/** A Drizzle database on either driver; queries are written once against this type. */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A database or a transaction handle: every query function takes one of these first. */
export type Executor = Database | Parameters<Parameters<Database["transaction"]>[0]>[0];

export const migrationsFolder = resolve(dirname(fileURLToPath(import.meta.url)), "../../../drizzle");

/** Any value; migrations on PostgreSQL hold this advisory lock so instances that start together migrate once. */
const MIGRATION_LOCK_ID = 0x7e55e7a;

export interface DatabaseOptions {
  /** postgres:// URL; when absent the embedded PGlite database is used. */
  url?: string | undefined;
  /** PGlite data directory; `memory://` (or undefined with `memory: true`) keeps everything in memory. */
  dataDir?: string | undefined;
  /**
   * In-memory PGlite only: start from this data directory dump (`PGlite.dumpDataDir()`) instead of an empty cluster.
   * Tests use a migrated dump: loading it takes ~0.5 s where initdb in WebAssembly takes 2-4 s.
   */
  template?: Blob | undefined;
  /** Pool size for PostgreSQL. */
  maxConnections?: number | undefined;
  /** Connect timeout for PostgreSQL, in seconds. */
  connectTimeoutSeconds?: number | undefined;
  /** Server-side `statement_timeout` of every PostgreSQL connection, in milliseconds (0 = none). */
  statementTimeoutMs?: number | undefined;
  /** Server-side `idle_in_transaction_session_timeout`, in milliseconds (0 = none). */
  idleInTransactionTimeoutMs?: number | undefined;
}

/**
 * Delay before postgres.js reconnects after a failed connection, in seconds. Its default grows to 20 s after a few
 * failures, so after a ten-second outage the pool could sit out another 20 s before trying again; capped at 1 s the
 * first request after the database returns finds it within about a second.
 */
const reconnectBackoff = (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 1);

export interface DatabaseHandle {
  db: Database;
  kind: "postgres" | "pglite";
  /** Where the data lives, without credentials (safe to log). */
  describe: string;
  ping(): Promise<void>;
  /** Pool use (statements in flight, reserved connections, the maximum), live, for metrics. */
  pool: PoolStats;
  migrate(): Promise<void>;
  /** Number of migrations in `drizzle/` not yet applied to this database. */
  pendingMigrations(): Promise<number>;
  close(): Promise<void>;
  /**
   * PostgreSQL only: LISTEN on `channel` over a connection of its own (see `listenChannel`). Returns a stop function.
   * Absent on PGlite (one process: its callers invalidate locally).
   */
  listen?(channel: string, handlers: ListenHandlers): () => Promise<void>;
}

export interface ListenHandlers {
  /** A notification's payload (never the listener's own heartbeat). */
  notify(payload: string): void;
  /** The listener is (again) receiving every notification (true), or may be missing some (false). */
  state(up: boolean): void;
  /** The listener's heartbeat came back (about once a second while up). */
  beat(): void;
}

/** How often the listener proves its connection alive, and after how long without proof it counts as down. */
const LISTEN_HEARTBEAT_MS = 1000;
const LISTEN_STALE_MS = 2500;

/**
 * LISTEN on a dedicated one-connection postgres.js client, watched: every second the listener sends itself a heartbeat
 * notification (from its own connection, so it proves the subscription end to end); without one for 2.5 s, or when
 * the connection closes, it reports down and re-issues LISTEN on a fresh connection at the next tick. postgres.js's own
 * `sql.listen` re-subscribes once after a close but gives up for good if that attempt fails (the database is still
 * down), and never says when notifications may have been lost, which a cache must know.
 */
function listenChannel(
  url: string,
  options: DatabaseOptions,
  channel: string,
  handlers: ListenHandlers,
): () => Promise<void> {
  const heartbeat = `hb:${Math.random().toString(36).slice(2)}`;
  let client: postgres.Sql | null = null;
  let listening = false;
  let up = false;
  let lastBeatMs = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const setUp = (value: boolean) => {
    if (up === value) return;
    up = value;
    handlers.state(value);
  };
  const drop = () => {
    listening = false;
    setUp(false);
    const old = client;
    client = null;
    old?.end({ timeout: 0 }).catch(() => {});
  };
  const tick = async () => {
    try {
      if (!listening) {
        // `onnotify` is how postgres.js hands over NotificationResponse messages (its typings leave it out).
        const listenerOptions = {
          max: 1,
          idle_timeout: 0,
          max_lifetime: null,
          fetch_types: false,
          connect_timeout: options.connectTimeoutSeconds ?? 5,
          connection: { statement_timeout: 5000 },
          onnotice: () => {},
          debug: false,
          onnotify: (name: string, payload: string) => {
            if (name !== channel) return;
            if (payload === heartbeat) {
              lastBeatMs = Date.now();
              if (up) handlers.beat();
            } else if (!payload.startsWith("hb:")) handlers.notify(payload);
          },
          onclose: () => {
            if (!stopped && client === opened) drop();
          },
        };
        const opened = client ?? postgres(url, listenerOptions as postgres.Options<Record<string, never>>);
        client = opened;
        await client.unsafe(`listen "${channel.replace(/"/g, '""')}"`);
        listening = true;
        lastBeatMs = Date.now();
        setUp(true);
        handlers.beat();
      } else {
        await client?.unsafe("select pg_notify($1, $2)", [channel, heartbeat]);
        if (Date.now() - lastBeatMs > LISTEN_STALE_MS) drop();
      }
    } catch {
      if (!stopped) drop();
    }
    if (!stopped) {
      timer = setTimeout(tick, LISTEN_HEARTBEAT_MS);
      timer.unref();
    }
  };
  void tick();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    listening = false;
    await client?.end({ timeout: 1 }).catch(() => {});
  };
}

interface JournalEntry {
  idx: number;
  when: number;
  tag: string;
}

let journalEntries: JournalEntry[] | undefined;

/** The migrations shipped with this build (read once: they cannot change while the process runs). */
function journal(): JournalEntry[] {
  if (!journalEntries) {
    const raw = readFileSync(resolve(migrationsFolder, "meta/_journal.json"), "utf8");
    journalEntries = (JSON.parse(raw) as { entries: JournalEntry[] }).entries;
  }
  return journalEntries;
}

/** Rows of a raw `db.execute()` result, whichever driver produced it (PGlite wraps them, postgres.js does not). */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

async function countPending(db: Database): Promise<number> {
  const entries = journal();
  let applied: number[] = [];
  try {
    const rows = await db.execute<{ created_at: string | number }>(
      sql`select created_at from drizzle.__drizzle_migrations`,
    );
    applied = rowsOf<{ created_at: string | number }>(rows).map((r) => Number(r.created_at));
  } catch (error) {
    // 42P01 / 3F000: the migrations table or schema does not exist yet, so nothing is applied.
    const code =
      (error as { code?: string; cause?: { code?: string } }).code ??
      (error as { cause?: { code?: string } }).cause?.code;
    if (code !== "42P01" && code !== "3F000") throw error;
  }
  const done = new Set(applied);
  return entries.filter((e) => !done.has(e.when)).length;
}

/** Strip the password from a URL so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

/**
 * Exclusive lock on a PGlite data directory. PGlite is one process's database: a second process opening the
 * same files would corrupt them, so the second opener fails with a clear message instead.
 */
export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `The embedded database in ${dataDir} is in use by another Tessera process (pid ${pid}). ` +
        "Stop it first, or point both at PostgreSQL with DATABASE_URL.",
    );
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function lockDataDir(dataDir: string): () => void {
  const lockPath = `${resolve(dataDir)}.lock`;
  mkdirSync(dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          unlinkSync(lockPath);
        } catch {
          // already gone: nothing to release
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number.parseInt(readFileSync(lockPath, "utf8"), 10);
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) throw new DataDirLockedError(dataDir, pid);
      // A stale lock left by a process that died: take it over.
      unlinkSync(lockPath);
    }
  }
  throw new Error(`Could not lock ${lockPath}`);
}

/** Reads the pid holding an embedded data directory, or null when it is free. */
export function dataDirHolder(dataDir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(`${resolve(dataDir)}.lock`, "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export async function createDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.url) return createPostgres(options.url, options);
  return createPglite(options.dataDir, options.template);
}

async function createPostgres(url: string, options: DatabaseOptions): Promise<DatabaseHandle> {
  const client = postgres(url, {
    max: options.maxConnections ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    backoff: reconnectBackoff,
    // Startup parameters: a statement or an abandoned transaction cannot hold a connection (and its locks) forever.
    connection: {
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 30_000,
    },
    onnotice: () => {},
    // Keep credentials and query parameters out of error messages that may reach logs.
    debug: false,
  });
  // Statements issued inside a request are bound to its deadline (see deadline.ts); the handle's own ping and
  // migrations are not.
  const pool = new PoolCounter(options.maxConnections ?? 10);
  // The offset to the server's clock, for single statements that carry their deadline (db-clock.ts).
  const clock = new DatabaseClock();
  clock.watch(client);
  const db = drizzlePostgres(withDeadlines(countingPostgres(client, pool), true, clock), {
    schema,
    casing: "snake_case",
  }) as unknown as Database;
  return {
    db,
    pool,
    kind: "postgres",
    describe: redactUrl(url),
    async ping() {
      await client`select 1`;
    },
    async migrate() {
      // A dedicated one-connection client: the session-level advisory lock and every migration statement run on
      // the same connection, and instances starting together wait for each other instead of racing DDL.
      const single = postgres(url, { max: 1, connect_timeout: options.connectTimeoutSeconds ?? 5, onnotice: () => {} });
      try {
        await single`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
        await migratePostgres(drizzlePostgres(single, { casing: "snake_case" }), { migrationsFolder });
        await single`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`;
      } finally {
        await single.end({ timeout: 5 });
      }
    },
    // Asked of the server each time: other instances and operators share it (a restored backup can be behind).
    pendingMigrations: () => countPending(db),
    async close() {
      clock.stop();
      await client.end({ timeout: 5 });
    },
    listen: (channel, handlers) => listenChannel(url, options, channel, handlers),
  };
}

/**
 * PGlite's own start parameters plus a smaller buffer pool. PGlite keeps PostgreSQL's default of 128 MB of
 * shared_buffers inside its WebAssembly memory, which PostgreSQL fills as it reads and which never shrinks: on an
 * existing DATA_DIR it was most of the server's memory. The embedded database is a development and demo database of
 * a few tens of MB, and a page not in the pool is a copy away (NODEFS reads the real files, which the OS caches).
 * Measured on `pnpm start` with an existing DATA_DIR (2026-12-03): idle RSS 359-386 -> 240-260 MB, /readyz after
 * 2.4 -> 1.9 s.
 */
const PGLITE_OPTIONS = { startParams: [...PGlite.defaultStartParams, "-c", "shared_buffers=16MB"] };

/**
 * Creates a new PGlite data directory (initdb) in a child process. initdb inside the WebAssembly instance grows that
 * instance's memory to about twice what a running database needs, and WebAssembly memory never shrinks: run in this
 * process, it stayed resident beside the database opened after it (a first `pnpm start` idled at 550-590 MB, a
 * restart on the same DATA_DIR at ~250 MB; in a worker thread, 380 MB). A child's memory is the OS's again when it
 * exits. The child dies with this process: a server stopped during its first start leaves no initdb running behind
 * the data directory's lock.
 */
async function initdbInChild(dataDir: string): Promise<void> {
  const script = `const { PGlite } = require(process.argv[1]);
    (async () => {
      const client = new PGlite(process.argv[2], { startParams: JSON.parse(process.argv[3]) });
      await client.waitReady;
      await client.close();
    })().catch((error) => {
      // PGlite's file system errors are Emscripten ErrnoErrors: no message, only a WASI errno.
      const why = error?.message || (error?.errno !== undefined ? "file system error " + error.errno + " (is it a directory this user can write?)" : String(error));
      process.stderr.write(why);
      process.exitCode = 1;
    });`;
  const pglite = createRequire(import.meta.url).resolve("@electric-sql/pglite");
  const child = spawn(process.execPath, ["-e", script, pglite, dataDir, JSON.stringify(PGLITE_OPTIONS.startParams)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const killChild = () => child.kill("SIGKILL");
  process.once("exit", killChild);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  let code: number | null;
  let signal: string | null;
  try {
    [code, signal] = (await once(child, "exit")) as [number | null, string | null];
  } finally {
    process.off("exit", killChild);
  }
  if (code !== 0) {
    throw new Error(
      `creating the embedded database in ${dataDir} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`,
    );
  }
}

async function createPglite(dataDir: string | undefined, template?: Blob): Promise<DatabaseHandle> {
  const inMemory = !dataDir || dataDir === "memory://";
  if (template && !inMemory) throw new Error("a PGlite template applies to an in-memory database only");
  const release = inMemory ? () => {} : lockDataDir(dataDir);
  let client: PGlite;
  try {
    if (inMemory) client = new PGlite(template ? { loadDataDir: template, ...PGLITE_OPTIONS } : PGLITE_OPTIONS);
    else {
      if (!existsSync(resolve(dataDir, "PG_VERSION"))) await initdbInChild(resolve(dataDir));
      client = new PGlite(resolve(dataDir), PGLITE_OPTIONS);
    }
    await client.waitReady;
  } catch (error) {
    release();
    throw error;
  }
  const pool = new PoolCounter(1);
  const db = drizzlePglite(countingPglite(client, pool), { schema, casing: "snake_case" }) as unknown as Database;
  let migrated = false;
  return {
    db,
    pool,
    kind: "pglite",
    describe: inMemory ? "embedded PGlite (in memory)" : `embedded PGlite in ${resolve(dataDir)}`,
    async ping() {
      if (client.closed) throw new Error("embedded database is closed");
      await client.query("select 1");
    },
    async migrate() {
      await migratePglite(drizzlePglite(client, { casing: "snake_case" }), { migrationsFolder });
      migrated = true;
    },
    // This process holds the data directory alone (lockDataDir): once it has applied every migration it ships, none
    // can be pending again, so /readyz only pings instead of re-reading the migrations table on every probe.
    pendingMigrations: async () => (migrated ? 0 : countPending(db)),
    async close() {
      try {
        if (!client.closed) await client.close();
      } finally {
        release();
      }
    },
  };
}
