import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createDatabase, rowsOf } from "@tessera/db";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { build } from "../contract.ts";
import { basic, createUser, registerClient, type TestClient } from "../oauth/helpers.ts";
import { Cluster, freePort } from "./cluster.ts";

/**
 * Losing the database under load (issue #10), end to end: our own PostgreSQL cluster, the real server as a child
 * process (node --import tsx src/server.ts), a steady refresh + direct sign-in load, PostgreSQL stopped for ~10 s (pg_ctl stop -m fast; FAULT_PG_STOP_MODE=immediate for a crash).
 * Runs only with TESSERA_FAULT_TEST=1 (`pnpm test:fault`, its own CI step); `pnpm test` stays server-free.
 */
const enabled = process.env.TESSERA_FAULT_TEST === "1";
const repo = resolve(fileURLToPath(new URL("../../../../", import.meta.url)));

const DEADLINE_MS = 5000;
/** The product promises an answer by the deadline (+0.25 s backstop); on a loaded 2-core machine allow 3 s more. */
const ANSWER_LIMIT_MS = DEADLINE_MS + 3000;
const OUTAGE_MS = 10_000;
/** Promised: /readyz is 200 again within 5 s of the database accepting connections. */
const READY_WITHIN_MS = 5000;
const CHAINS = 6;
const PASSWORD = "correct horse battery staple";

interface Outcome {
  kind: "refresh" | "sign-in";
  status: number | "no answer";
  error?: string;
  code?: string;
  ms: number;
}

describe.skipIf(!enabled)("fault: PostgreSQL stopped for 10 s under load", () => {
  let cluster: Cluster;
  let server: ChildProcess;
  let serverLog = "";
  let exited: { code: number | null; signal: string | null } | null = null;
  let base = "";
  let dataDir = "";
  let client: TestClient;
  const emails: string[] = [];

  beforeAll(async () => {
    cluster = await Cluster.create();
    dataDir = mkdtempSync(join(tmpdir(), "tessera-fault-data-"));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawn(process.execPath, ["--import", "tsx", "apps/auth-server/src/server.ts"], {
      cwd: repo,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: "development",
        PORT: String(port),
        HOST: "127.0.0.1",
        ISSUER: base,
        DATABASE_URL: cluster.url,
        DATA_DIR: dataDir,
        TESSERA_MASTER_KEY: "22".repeat(32),
        LOG_LEVEL: "warn",
        RATE_LIMIT_ENABLED: "false",
        REQUEST_DEADLINE_MS: String(DEADLINE_MS),
        DB_CONNECT_TIMEOUT_SECONDS: "2",
        DB_POOL_MAX: "10",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    server.stdout?.on("data", (chunk) => (serverLog += chunk));
    server.stderr?.on("data", (chunk) => (serverLog += chunk));
    server.on("exit", (code, signal) => (exited = { code, signal }));
    await waitReady(60_000);

    // The client and users, through the library against the same database (the server has migrated it).
    const database = await createDatabase({ url: cluster.url, maxConnections: 2 });
    const app = await build(testConfig({ ISSUER: base }), { database });
    await app.ready();
    client = await registerClient(app, { name: "Game", directSignIn: true });
    for (let i = 0; i < CHAINS + 1; i++) {
      const email = `player${i}@example.com`;
      await createUser(app, { email, password: PASSWORD });
      emails.push(email);
    }
    await app.close();
    await database.close();
  }, 120_000);

  afterAll(async () => {
    if (server && exited === null) {
      server.kill("SIGTERM");
      await new Promise((r) => server.once("exit", r));
    }
    cluster?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function readyStatus(): Promise<number | "no answer"> {
    try {
      return (await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(ANSWER_LIMIT_MS) })).status;
    } catch {
      return "no answer";
    }
  }

  async function waitReady(timeoutMs: number) {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until) {
      if (exited) throw new Error(`server exited ${JSON.stringify(exited)}:\n${serverLog}`);
      if ((await readyStatus()) === 200) return;
      await sleep(100);
    }
    throw new Error(`server not ready:\n${serverLog}`);
  }

  async function call(kind: Outcome["kind"], url: string, body: Record<string, string>) {
    const started = performance.now();
    try {
      const response = await fetch(`${base}${url}`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: basic(client.clientId, client.secret),
        },
        body: new URLSearchParams(body).toString(),
        signal: AbortSignal.timeout(ANSWER_LIMIT_MS + 60_000),
      });
      const json = (await response.json()) as Record<string, unknown>;
      const outcome: Outcome = { kind, status: response.status, ms: performance.now() - started };
      if (typeof json.error === "string") outcome.error = json.error;
      if (typeof json.tessera_code === "string") outcome.code = json.tessera_code;
      return { outcome, json };
    } catch {
      return { outcome: { kind, status: "no answer", ms: performance.now() - started } as Outcome, json: {} };
    }
  }

  const signIn = (email: string) =>
    call("sign-in", "/api/v1/clients/sessions", { username: email, password: PASSWORD });
  const refresh = (token: string) => call("refresh", "/token", { grant_type: "refresh_token", refresh_token: token });

  it("stays up, answers every request within its deadline, recovers, and loses, forks or ends no chain", async () => {
    const outcomes: Outcome[] = [];
    const chains: { email: string; token: string }[] = [];
    for (const email of emails.slice(0, CHAINS)) {
      const { outcome, json } = await signIn(email);
      expect(outcome.status).toBe(200);
      chains.push({ email, token: json.refresh_token as string });
    }

    let running = true;
    const refresher = async (chain: { token: string }) => {
      while (running) {
        const { outcome, json } = await refresh(chain.token);
        outcomes.push(outcome);
        if (outcome.status === 200) chain.token = json.refresh_token as string;
        await sleep(outcome.status === 200 ? 50 : 250);
      }
    };
    const signer = async () => {
      const email = emails[CHAINS] as string;
      while (running) {
        const { outcome, json } = await signIn(email);
        outcomes.push(outcome);
        if (outcome.status === 200) chains.push({ email, token: json.refresh_token as string });
        await sleep(400);
      }
    };
    const readiness: { at: number; status: number | "no answer" }[] = [];
    const prober = async () => {
      while (running) {
        readiness.push({ at: performance.now(), status: await readyStatus() });
        await sleep(200);
      }
    };
    const load = [...chains.map((c) => refresher(c)), signer(), prober()];

    await sleep(3000);
    cluster.stop(process.env.FAULT_PG_STOP_MODE === "immediate" ? "immediate" : "fast");
    const downAt = performance.now();
    await sleep(OUTAGE_MS);
    cluster.start();
    const upAt = performance.now();
    await sleep(READY_WITHIN_MS + 3000);
    running = false;
    await Promise.all(load);

    // The process stayed up, and logged no crash.
    const crash = serverLog.match(/^.*(TypeError|uncaught exception|exiting).*$/im)?.[0];
    expect({ exited, crash }).toEqual({ exited: null, crash: undefined });

    // Every request got an answer within the deadline: 200, or 503 with its code.
    const unanswered = outcomes.filter((o) => o.status === "no answer" || o.ms > ANSWER_LIMIT_MS);
    expect(unanswered).toEqual([]);
    const unexpected = outcomes.filter(
      (o) => o.status !== 200 && !(o.status === 503 && o.error === "temporarily_unavailable"),
    );
    expect(unexpected).toEqual([]);
    const during = outcomes.filter((o) => o.status === 503).length;
    expect(during).toBeGreaterThan(0); // the outage was seen

    // /readyz: 503 while down, 200 again within 5 s of the database returning.
    expect(readiness.some((r) => r.at > downAt && r.at < upAt && r.status === 503)).toBe(true);
    const backAt = readiness.find((r) => r.at > upAt && r.status === 200)?.at;
    expect(backAt).toBeDefined();
    expect((backAt as number) - upAt).toBeLessThan(READY_WITHIN_MS);

    // In SQL: no refresh token has two children (no fork), no session ended for reuse.
    const database = await createDatabase({ url: cluster.url, maxConnections: 1 });
    try {
      const forks = rowsOf(
        await database.db.execute(
          sql`select parent_id from refresh_tokens where parent_id is not null group by parent_id having count(*) > 1`,
        ),
      );
      expect(forks).toEqual([]);
      const reuse = rowsOf(
        await database.db.execute(sql`select id from sessions where revoked_reason = 'refresh_token_reuse'`),
      );
      expect(reuse).toEqual([]);
    } finally {
      await database.close();
    }

    // No chain lost: each client refreshes with the newest token it holds.
    for (const chain of chains) {
      const { outcome } = await refresh(chain.token);
      expect({ email: chain.email, ...outcome, ms: 0 }).toEqual({
        email: chain.email,
        kind: "refresh",
        status: 200,
        ms: 0,
      });
    }

    const worst = Math.max(...outcomes.map((o) => o.ms));
    process.stdout.write(
      `fault: ${outcomes.length} requests, ${during} answered 503 during the outage, slowest ${Math.round(worst)} ms, ` +
        `/readyz 200 ${Math.round((backAt as number) - upAt)} ms after PostgreSQL was back\n`,
    );
  }, 120_000);
});
