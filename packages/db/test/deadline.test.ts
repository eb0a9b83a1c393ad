import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { eq, sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type DatabaseHandle, runWithDeadline, users } from "../src/index.ts";
import { TcpProxy } from "../src/tcp-proxy.ts";
import { createTestDatabase } from "../src/testing.ts";

// Drizzle queries are lazy (they run when awaited), so each test awaits inside the deadline scope, as a route does.

/** The code of an error or of the first cause that has one (drizzle wraps driver errors). */
function codeOf(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

const email = () => `deadline-${randomBytes(4).toString("hex")}@example.com`;

/**
 * Request deadlines in the PostgreSQL client (src/deadline.ts): database work started for a request whose deadline
 * has passed never runs, even when the database comes back later. Needs a real server (TEST_DATABASE_URL).
 */
describe.skipIf(!process.env.TEST_DATABASE_URL)("request deadlines on PostgreSQL", () => {
  let base: DatabaseHandle & { url?: string };
  let direct: postgres.Sql;
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    base = await createTestDatabase();
    direct = postgres(base.url as string, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    for (const o of opened.reverse()) await o.close();
    await direct.end();
    await base.close();
  });

  async function throughProxy() {
    const target = new URL(base.url as string);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.listen();
    const url = new URL(target);
    url.port = String(proxy.port);
    opened.push(proxy);
    // A connect timeout far beyond the deadlines below: what ends the wait must be the deadline.
    const handle = await createDatabase({ url: url.toString(), maxConnections: 2, connectTimeoutSeconds: 60 });
    opened.push(handle);
    return { proxy, handle };
  }

  const rowsFor = async (address: string) => (await direct`select id from users where email = ${address}`).length;

  it("withdraws a write waiting for an unreachable database at the deadline; it never runs when the database returns", async () => {
    const { proxy, handle } = await throughProxy();
    proxy.blackhole();
    const address = email();
    const attempt = runWithDeadline(performance.now() + 300, async () => {
      await handle.db.insert(users).values({ email: address });
    }).then(
      () => "inserted",
      (error: unknown) => codeOf(error),
    );
    await sleep(800);
    // The partition heals: the connection's held startup bytes reach the server now, as TCP would deliver them.
    proxy.heal();
    expect(await attempt).toBe("DB_DEADLINE_EXCEEDED");
    // The pool works again (outside any deadline), and the withdrawn insert did not run on the reconnected pool.
    await handle.db.execute(sql`select 1`);
    await sleep(200);
    expect(await rowsFor(address)).toBe(0);
  });

  it("refuses a statement issued after the deadline without sending it", async () => {
    const { proxy, handle } = await throughProxy();
    proxy.blackhole();
    const address = email();
    const outcome = await runWithDeadline(performance.now() - 1, async () => {
      await handle.db.insert(users).values({ email: address });
    }).then(
      () => "inserted",
      (error: unknown) => codeOf(error),
    );
    expect(outcome).toBe("DB_DEADLINE_EXCEEDED");
    proxy.heal();
    await handle.db.execute(sql`select 1`);
    expect(await rowsFor(address)).toBe(0);
  });

  it("gives up a reserved connection at the deadline; statements meant for it never run when the database returns", async () => {
    const { proxy, handle } = await throughProxy();
    proxy.blackhole();
    const address = email();
    // Reserve a connection, then send statements on it (what a caller holding one connection across statements does).
    const client = (handle.db as unknown as { session: { client: postgres.Sql } }).session.client;
    const attempt = runWithDeadline(performance.now() + 300, async () => {
      const connection = await client.reserve();
      try {
        await connection.unsafe("insert into users (email) values ($1)", [address]);
      } finally {
        connection.release();
      }
    }).then(
      () => "inserted",
      (error: unknown) => codeOf(error),
    );
    await sleep(800);
    proxy.heal();
    expect(await attempt).toBe("DB_DEADLINE_EXCEEDED");
    await handle.db.execute(sql`select 1`);
    await sleep(200);
    expect(await rowsFor(address)).toBe(0);
  });

  it("rolls back, never commits, a transaction whose deadline passed while it ran", async () => {
    const address = email();
    const outcome = await runWithDeadline(performance.now() + 300, () =>
      base.db.transaction(async (tx) => {
        await tx.insert(users).values({ email: address });
        await sleep(600);
      }),
    ).then(
      () => "committed",
      (error: unknown) => codeOf(error),
    );
    expect(outcome).toBe("DB_DEADLINE_EXCEEDED");
    expect(await rowsFor(address)).toBe(0);
  });

  it("bounds each statement of a transaction by the time left (SET LOCAL statement_timeout)", async () => {
    const outcome = await runWithDeadline(performance.now() + 500, () =>
      base.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_sleep(20)`);
      }),
    ).then(
      () => "finished",
      (error: unknown) => codeOf(error),
    );
    // 57014 query_canceled, from the server's statement_timeout: the sleep did not run its 20 s.
    expect(outcome).toBe("57014");
  });

  it("leaves work outside any request scope alone", async () => {
    const address = email();
    await base.db.transaction(async (tx) => {
      await tx.insert(users).values({ email: address });
    });
    expect(await rowsFor(address)).toBe(1);
    await base.db.delete(users).where(eq(users.email, address));
  });
});
