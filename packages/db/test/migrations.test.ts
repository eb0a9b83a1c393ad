import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { createDatabase, DataDirLockedError, dataDirHolder, rowsOf, users } from "../src/index.ts";
import { createTestDatabase, usingPostgres } from "../src/testing.ts";

describe("migrations", () => {
  it(`apply on ${usingPostgres() ? "PostgreSQL" : "PGlite"} and create every table`, async () => {
    const handle = await createTestDatabase();
    try {
      expect(await handle.pendingMigrations()).toBe(0);
      const result = await handle.db.execute<{ table_name: string }>(
        sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`,
      );
      const rows = rowsOf<{ table_name: string }>(result);
      expect(rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining([
          "users",
          "clients",
          "sessions",
          "refresh_tokens",
          "authorization_codes",
          "signing_keys",
          "email_tokens",
          "audit_events",
        ]),
      );
      // Migrating again is a no-op.
      await handle.migrate();
      expect(await handle.pendingMigrations()).toBe(0);
    } finally {
      await handle.close();
    }
  });

  it("enforces case-insensitive unique emails", async () => {
    const handle = await createTestDatabase();
    try {
      await handle.db.insert(users).values({ email: "ada@example.com" });
      await expect(handle.db.insert(users).values({ email: "ADA@example.com" })).rejects.toThrow();
    } finally {
      await handle.close();
    }
  });
});

describe.runIf(usingPostgres())("migrations on PostgreSQL", () => {
  it("are safe when several instances start at once", async () => {
    const first = await createTestDatabase();
    const url = (first as { url?: string }).url as string;
    // The test database is already migrated; drop the bookkeeping so that every instance has work to do.
    await first.db.execute(sql`drop schema public cascade; create schema public; drop schema drizzle cascade`);
    expect(await first.pendingMigrations()).toBeGreaterThan(0);
    const instances = await Promise.all([1, 2, 3, 4].map(() => createDatabase({ url })));
    try {
      await Promise.all(instances.map((i) => i.migrate()));
      expect(await first.pendingMigrations()).toBe(0);
    } finally {
      await Promise.all(instances.map((i) => i.close()));
      await first.close();
    }
  });
});

describe.skipIf(usingPostgres())("embedded data directory", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-db-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("persists data across a restart and refuses a second opener", async () => {
    const dataDir = join(dir, "data");
    const first = await createDatabase({ dataDir });
    await first.migrate();
    await first.db.insert(users).values({ email: "persist@example.com" });
    expect(dataDirHolder(dataDir)).toBe(process.pid);
    await expect(createDatabase({ dataDir })).rejects.toBeInstanceOf(DataDirLockedError);
    await first.close();
    expect(dataDirHolder(dataDir)).toBeNull();

    const second = await createDatabase({ dataDir });
    try {
      expect(await second.pendingMigrations()).toBe(0);
      const rows = await second.db.select().from(users);
      expect(rows.map((r) => r.email)).toEqual(["persist@example.com"]);
    } finally {
      await second.close();
    }
    // Two initdb runs in WebAssembly plus the migrations: well over the default timeout on a loaded 2-core machine.
  }, 180_000);

  it("creates a new data directory in a child process, so this one never holds initdb's memory", async () => {
    // initdb grows its WebAssembly instance's memory to ~700 MB, which never shrinks: in this process it would stay
    // resident beside the database opened after it. Growth of this process's RSS with initdb here: 500-600 MB.
    const before = process.memoryUsage().rss;
    const db = await createDatabase({ dataDir: join(dir, "fresh") });
    try {
      const grown = (process.memoryUsage().rss - before) / 2 ** 20;
      expect(grown).toBeLessThan(350);
      // The smaller buffer pool (PGlite's default is PostgreSQL's 128MB, kept in that same memory).
      expect(rowsOf(await db.db.execute(sql`show shared_buffers`))).toEqual([{ shared_buffers: "16MB" }]);
    } finally {
      await db.close();
    }
  }, 180_000);

  it("reports a data directory it cannot create, names it, and leaves no lock behind", async () => {
    const dataDir = join(dir, "a-file");
    writeFileSync(dataDir, "not a directory");
    const error = await createDatabase({ dataDir }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(`creating the embedded database in ${dataDir} failed (exit 1)`);
    expect(dataDirHolder(dataDir)).toBeNull();
  }, 60_000);
});
