import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import postgres from "postgres";
import { createDatabase, type DatabaseHandle, migrationsFolder } from "./index.ts";

/**
 * A fresh, migrated database for one test file. With `TEST_DATABASE_URL` set (CI's real-PostgreSQL run) it creates
 * a throwaway database on that server and drops it on close; otherwise it is an in-memory PGlite.
 *
 * Both start from a migrated template built once per set of migrations (keyed by a hash of `drizzle/`): on PGlite a
 * data directory dump (loading it takes ~0.5 s; initdb in WebAssembly plus the migrations took 2.2-3.9 s per database,
 * hundreds of times per run), on PostgreSQL a template database copied by `CREATE DATABASE … TEMPLATE`. The
 * migrations themselves still run from scratch once per run (building the template), and `migrate()` still runs on
 * every test database (finding nothing to apply), as at a real start.
 */
export async function createTestDatabase(): Promise<DatabaseHandle & { url?: string }> {
  const base = process.env.TEST_DATABASE_URL;
  if (!base) {
    const handle = await createDatabase({ dataDir: "memory://", template: await pgliteTemplate() });
    await handle.migrate();
    return handle;
  }
  const name = `tessera_test_${randomBytes(6).toString("hex")}`;
  const template = await postgresTemplate(base);
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name} template ${template}`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  const handle = await createDatabase({ url: url.toString(), maxConnections: 20 });
  await handle.migrate();
  return {
    ...handle,
    url: url.toString(),
    async close() {
      await handle.close();
      const dropper = postgres(base, { max: 1, onnotice: () => {} });
      await dropper.unsafe(`drop database if exists ${name} with (force)`);
      await dropper.end();
    },
  };
}

export const usingPostgres = (): boolean => Boolean(process.env.TEST_DATABASE_URL);

export { TcpProxy } from "./tcp-proxy.ts";

/** Hash of every migration file and the PGlite version: a template is reused only for exactly these migrations. */
function migrationsHash(): string {
  const hash = createHash("sha256");
  // The dump's format is PGlite's own: a PGlite upgrade builds a new template.
  hash.update(
    readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../node_modules/@electric-sql/pglite/package.json")),
  );
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else hash.update(entry.name).update(readFileSync(path));
    }
  };
  walk(migrationsFolder);
  return hash.digest("hex").slice(0, 16);
}

let pgliteTemplatePromise: Promise<Blob> | undefined;

/** The migrated PGlite dump, from this process's memory, the shared file cache, or built (and cached) now. */
function pgliteTemplate(): Promise<Blob> {
  pgliteTemplatePromise ??= (async () => {
    const dir = join(tmpdir(), "tessera-test-templates");
    const file = join(dir, `pglite-${migrationsHash()}.tar`);
    try {
      return new Blob([readFileSync(file)]);
    } catch {
      // Not built yet (or unreadable): build it. Several workers may race here; each writes its own temporary file
      // and renames it into place, so a reader never sees a partial dump.
    }
    const client = new PGlite();
    try {
      await migratePglite(drizzlePglite(client, { casing: "snake_case" }), { migrationsFolder });
      const dump = await client.dumpDataDir("none");
      const bytes = Buffer.from(await dump.arrayBuffer());
      mkdirSync(dir, { recursive: true });
      const partial = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
      writeFileSync(partial, bytes);
      renameSync(partial, file);
      return new Blob([bytes]);
    } finally {
      await client.close();
    }
  })();
  return pgliteTemplatePromise;
}

/** Any value: serialises building the PostgreSQL template among concurrently starting test files. */
const TEMPLATE_LOCK_ID = 0x7e55e7b;

/** Name of the migrated template database on that server, built now if this set of migrations has none yet. */
async function postgresTemplate(base: string): Promise<string> {
  const name = `tessera_template_${migrationsHash()}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  try {
    const exists = async () => (await admin`select 1 from pg_database where datname = ${name}`).length > 0;
    if (await exists()) return name;
    await admin`select pg_advisory_lock(${TEMPLATE_LOCK_ID})`;
    try {
      if (await exists()) return name;
      // Built under another name and renamed when complete: a template is never seen half-migrated.
      const building = `${name}_building`;
      await admin.unsafe(`drop database if exists ${building} with (force)`);
      await admin.unsafe(`create database ${building}`);
      const url = new URL(base);
      url.pathname = `/${building}`;
      const handle = await createDatabase({ url: url.toString(), maxConnections: 1 });
      try {
        await handle.migrate();
      } finally {
        await handle.close();
      }
      await admin.unsafe(`alter database ${building} rename to ${name}`);
      return name;
    } finally {
      await admin`select pg_advisory_unlock(${TEMPLATE_LOCK_ID})`;
    }
  } finally {
    await admin.end();
  }
}
