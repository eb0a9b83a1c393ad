/**
 * For the database-only benches (explain.ts, rotation.ts): a throwaway database on BENCH_DATABASE_URL's server
 * (default the machine's PostgreSQL), migrated as the server would migrate it, handed to `use` and dropped afterwards
 * whatever happens.
 */
import { createDatabase } from "../packages/db/src/index.ts";

// bench/ has no dependencies of its own: postgres as packages/db has it.
export const postgres = (await import("../packages/db/node_modules/postgres/src/index.js"))
  .default as typeof import("../packages/db/node_modules/postgres/types/index.d.ts").default;

export async function withThrowawayDatabase<T>(prefix: string, use: (url: string) => Promise<T>): Promise<T> {
  const adminUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const name = `${prefix}_${process.pid}_${Date.now()}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    const handle = await createDatabase({ url: url.href });
    await handle.migrate();
    await handle.close();
    return await use(url.href);
  } finally {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}
