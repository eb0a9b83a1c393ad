import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
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
import { withDeadlines } from "./deadline.ts";
import * as schema from "./schema/index.ts";

export {
  DEADLINE_EXCEEDED,
  DeadlineExceededError,
  deadlineRemainingMs,
  outsideDeadline,
  runWithDeadline,
} from "./deadline.ts";
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
  migrate(): Promise<void>;
  /** Number of migrations in `drizzle/` not yet applied to this database. */
  pendingMigrations(): Promise<number>;
  close(): Promise<void>;
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
  return createPglite(options.dataDir);
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
  const db = drizzlePostgres(withDeadlines(client), { schema, casing: "snake_case" }) as unknown as Database;
  return {
    db,
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
      await client.end({ timeout: 5 });
    },
  };
}

async function createPglite(dataDir: string | undefined): Promise<DatabaseHandle> {
  const inMemory = !dataDir || dataDir === "memory://";
  const release = inMemory ? () => {} : lockDataDir(dataDir);
  let client: PGlite;
  try {
    if (inMemory) client = new PGlite();
    else {
      const fresh = !existsSync(resolve(dataDir, "PG_VERSION"));
      client = new PGlite(resolve(dataDir));
      if (fresh) {
        // The first open runs initdb inside the WebAssembly instance, which grows its memory to about twice what a
        // running database needs, and WebAssembly memory never shrinks. A second instance costs about a second once;
        // the first one's memory goes back to the OS as V8 collects it (measured on a first `pnpm start`: resident
        // 880 -> 715 MiB at /readyz, 460 MiB after a full GC; a restart on an existing DATA_DIR runs at ~440 MiB).
        await client.waitReady;
        await client.close();
        client = new PGlite(resolve(dataDir));
      }
    }
    await client.waitReady;
  } catch (error) {
    release();
    throw error;
  }
  const db = drizzlePglite(client, { schema, casing: "snake_case" }) as unknown as Database;
  let migrated = false;
  return {
    db,
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
