import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { createDatabase, type DatabaseHandle } from "./index.ts";

/**
 * A fresh, migrated database for one test file. With `TEST_DATABASE_URL` set (CI's real-PostgreSQL run) it creates
 * a throwaway database on that server and drops it on close; otherwise it is an in-memory PGlite.
 */
export async function createTestDatabase(): Promise<DatabaseHandle & { url?: string }> {
  const base = process.env.TEST_DATABASE_URL;
  if (!base) {
    const handle = await createDatabase({ dataDir: "memory://" });
    await handle.migrate();
    return handle;
  }
  const name = `tessera_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
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
