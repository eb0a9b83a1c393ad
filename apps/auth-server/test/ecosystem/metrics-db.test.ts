import { rowsOf } from "@tessera/db";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser } from "../oauth/helpers.ts";

const TOKEN = "metrics-token-0123456789abcdef";
const PASSWORD = "correct horse battery staple";

/** The value of one sample line (`name{labels} value`), 0 when the series does not exist yet. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ METRICS_TOKEN: TOKEN });
}, 0);
afterAll(async () => t?.close());

const scrape = async () => {
  const res = await t.app.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.statusCode).toBe(200);
  return res.body;
};

const login = (email: string) =>
  t.app.inject({
    method: "POST",
    url: "/api/v1/login",
    headers: { "content-type": "application/json" },
    payload: JSON.stringify({ email, password: PASSWORD }),
  });

describe("/metrics: database pool use", () => {
  it("shows the pool's maximum, and statements in flight and reserved connections moving with the work", async () => {
    await scrape(); // fills the few-seconds cache of the database-read gauges: the next scrapes send no statement
    const idle = await scrape();
    expect(sample(idle, "tessera_db_pool_max_connections")).toBe(t.app.database.kind === "pglite" ? 1 : 20);
    expect(sample(idle, "tessera_db_queries_in_flight")).toBe(0);
    expect(sample(idle, "tessera_db_reserved_connections")).toBe(0);

    // A transaction holds a lock; a statement outside it waits for the same lock (PGlite: for its one connection).
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked = () => {};
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const transaction = t.app.ctx.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(4242)`);
      locked();
      await held;
    });
    await isLocked;
    // `then` sends it (Drizzle's queries are lazy).
    const waiting = t.app.ctx.db.execute(sql`select pg_advisory_xact_lock(4242)`).then(() => {});
    try {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const busy = await scrape();
      expect(sample(busy, "tessera_db_reserved_connections")).toBe(1);
      expect(sample(busy, "tessera_db_queries_in_flight")).toBe(1);
    } finally {
      release();
    }
    await transaction;
    await waiting;
    const after = await scrape();
    expect(sample(after, "tessera_db_reserved_connections")).toBe(0);
    expect(sample(after, "tessera_db_queries_in_flight")).toBe(0);
  });
});

describe("/metrics: sign-ins are counted once committed", () => {
  it("a sign-in whose transaction rolls back (its COMMIT fails) is not counted; the same sign-in committed is", async () => {
    const user = await createUser(t.app, { password: PASSWORD });
    const ok = 'tessera_sign_ins_total{method="password"}';
    // A deferred constraint trigger fails the COMMIT of this user's sign-in: everything in it rolls back.
    await t.app.ctx.db.execute(
      sql.raw(`create or replace function test_refuse_commit() returns trigger language plpgsql as $$
        begin raise exception 'commit refused by the test'; end $$`),
    );
    await t.app.ctx.db.execute(
      sql.raw(`create constraint trigger test_refuse_sign_in after insert on audit_events
        deferrable initially deferred for each row
        when (new.event = 'user.signed_in' and new.user_id = '${user.id}')
        execute function test_refuse_commit()`),
    );
    const before = sample(await scrape(), ok);
    const refused = await login(user.email);
    expect(refused.statusCode).toBeGreaterThanOrEqual(500);
    expect(refused.headers["set-cookie"]).toBeUndefined();
    expect(sample(await scrape(), ok)).toBe(before);
    // Nothing of it stays: no session row without its audit row (they are written together or not at all).
    const left = await t.app.ctx.db.execute(
      sql`select (select count(*)::int from sessions where user_id = ${user.id}) as sessions,
                 (select count(*)::int from audit_events where user_id = ${user.id} and event = 'user.signed_in') as audits`,
    );
    expect(rowsOf(left)[0]).toEqual({ sessions: 0, audits: 0 });

    await t.app.ctx.db.execute(sql.raw("drop trigger test_refuse_sign_in on audit_events"));
    expect((await login(user.email)).statusCode).toBe(200);
    expect(sample(await scrape(), ok)).toBe(before + 1);
    // The session and its audit row, written by one statement, name each other.
    const written = await t.app.ctx.db.execute(
      sql`select s.amr, a.outcome, a.details, a.client_id from sessions s
          join audit_events a on a.session_id = s.id and a.event = 'user.signed_in'
          where s.user_id = ${user.id} and a.user_id = ${user.id}`,
    );
    expect(rowsOf(written)).toEqual([
      { amr: ["pwd"], outcome: "success", details: { amr: ["pwd"], extended: false }, client_id: null },
    ]);
  });
});
