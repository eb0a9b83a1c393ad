import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { createDatabase, type DatabaseHandle, refreshTokens, rowsOf } from "@tessera/db";
import { createTestDatabase, TcpProxy } from "@tessera/db/testing";
import { eq, sql } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { build } from "../contract.ts";
import { basic, createUser, FORM, form, refresh, registerClient, type TestClient } from "../oauth/helpers.ts";

/**
 * Requests while PostgreSQL is unreachable (a TCP proxy that holds every byte, as a network partition does): each
 * gets 503 with its code within the request deadline, and a refresh held up past its deadline performs no write when
 * the database returns. Needs a real server (TEST_DATABASE_URL); the process-level fault test is in fault.test.ts.
 */
const DEADLINE_MS = 1000;
/** Generous: the promise is DEADLINE_MS (+0.25 s backstop); this only has to tell "answered" from "hung". */
const ANSWERED_WITHIN_MS = DEADLINE_MS + 4000;

describe.skipIf(!process.env.TEST_DATABASE_URL)("request deadlines while the database is unreachable", () => {
  let base: DatabaseHandle & { url?: string };
  let database: DatabaseHandle;
  let proxy: TcpProxy;
  let app: FastifyInstance;
  let client: TestClient;
  const PASSWORD = "correct horse battery staple";
  const email = "partition@example.com";

  beforeAll(async () => {
    base = await createTestDatabase();
    const target = new URL(base.url as string);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.listen();
    const proxied = new URL(target);
    proxied.port = String(proxy.port);
    // A connect timeout far beyond the deadline: what must end each request is the deadline.
    database = await createDatabase({ url: proxied.toString(), maxConnections: 4, connectTimeoutSeconds: 60 });
    app = await build(testConfig({ REQUEST_DEADLINE_MS: String(DEADLINE_MS), RATE_LIMIT_ENABLED: "false" }), {
      database,
      clock: new TestClock(),
    });
    await app.ready();
    client = await registerClient(app, { name: "Game", directSignIn: true });
    await createUser(app, { email, password: PASSWORD });
  });
  afterAll(async () => {
    proxy?.heal();
    await app?.close();
    await database?.close();
    await proxy?.close();
    await base?.close();
  });

  const signIn = () =>
    app.inject({
      method: "POST",
      url: "/api/v1/clients/sessions",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ username: email, password: PASSWORD }),
    });

  async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
    const started = performance.now();
    const value = await work;
    return { value, ms: performance.now() - started };
  }

  it("answers 503 within the deadline, and a stuck refresh does not rotate the token when the database returns", async () => {
    const first = await signIn();
    expect(first.statusCode).toBe(200);
    const token = first.json().refresh_token as string;

    proxy.blackhole();
    const [stuckRefresh, stuckSignIn, ready] = await Promise.all([
      timed(refresh(app, client, token)),
      timed(signIn()),
      timed(app.inject({ method: "GET", url: "/readyz" })),
    ]);
    for (const { ms } of [stuckRefresh, stuckSignIn, ready]) expect(ms).toBeLessThan(ANSWERED_WITHIN_MS);
    expect(stuckRefresh.value.statusCode).toBe(503);
    expect(stuckRefresh.value.headers["cache-control"]).toBe("no-store");
    expect(stuckRefresh.value.json()).toEqual({
      error: "temporarily_unavailable",
      error_description: "The database is not reachable.",
    });
    expect(stuckSignIn.value.statusCode).toBe(503);
    expect(stuckSignIn.value.json()).toMatchObject({ error: "temporarily_unavailable" });
    expect(ready.value.statusCode).toBe(503);
    expect(ready.value.json()).toMatchObject({ error: { code: "DATABASE_UNAVAILABLE", status: 503 } });

    // The database returns: everything the proxy held reaches it now.
    proxy.heal();
    let readyAgain = 0;
    for (let i = 0; i < 50 && readyAgain !== 200; i++) {
      readyAgain = (await app.inject({ method: "GET", url: "/readyz" })).statusCode;
      if (readyAgain !== 200) await sleep(100);
    }
    expect(readyAgain).toBe(200);
    await sleep(300);

    // In SQL: the stuck refresh issued nothing and retired nothing, so the token is still the chain's newest...
    const [presented] = await base.db.select().from(refreshTokens).where(eq(refreshTokens.parentId, refreshTokens.id));
    expect(presented).toBeUndefined();
    const all = await base.db.select().from(refreshTokens);
    expect(all.filter((row) => row.rotatedAt !== null || row.revokedAt !== null)).toEqual([]);
    expect(all.filter((row) => row.parentId !== null)).toEqual([]);
    // No connection was left inside the stuck request's transaction (holding the session's row lock, every later
    // refresh of the session would wait on it): its ROLLBACK reached the database. postgres.js's cancel() of a
    // statement queued on a reserved connection used to strand the statements queued after it, the ROLLBACK too.
    const stranded = rowsOf<{ pid: number }>(
      await base.db.execute(
        sql`select pid from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`,
      ),
    );
    expect(stranded).toEqual([]);
    // ...and the client can still refresh with it: the session was not ended behind its back.
    const retry = await refresh(app, client, token);
    expect(retry.statusCode).toBe(200);
  });
});
