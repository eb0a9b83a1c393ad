import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditEvents, createDatabase } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { testConfig } from "../../src/config/index.ts";
import { systemClock } from "../../src/libraries/clock.ts";
import { recordSignInFailure } from "../../src/libraries/throttle/failures.ts";
import { checkSignIn } from "../../src/libraries/throttle/gate.ts";

/** `tessera throttle ...` on the embedded database: list and lift IP suspensions, unlock an account. */
let root: string;
let env: Record<string, string>;

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

/** Opens the CLI's embedded database directly (the CLI has closed it) to set up or inspect state. */
async function withDb<T>(fn: (deps: Parameters<typeof recordSignInFailure>[0]) => Promise<T>): Promise<T> {
  const config = testConfig(env);
  const database = await createDatabase({ dataDir: config.dataDir });
  try {
    await database.migrate();
    return await fn({ db: database.db, clock: systemClock, config });
  } finally {
    await database.close();
  }
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "tessera-cli-throttle-"));
  env = {
    NODE_ENV: "test",
    DATA_DIR: join(root, "data"),
    TESSERA_MASTER_KEY: "33".repeat(32),
    LOG_LEVEL: "silent",
    THROTTLE_IP_MAX_FAILURES: "2",
    THROTTLE_ACCOUNT_FREE_FAILURES: "0",
    THROTTLE_ACCOUNT_LOCK_THRESHOLD: "2",
  };
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Each test opens the file-backed embedded database five or six times (the CLI and withDb take turns; one process owns
// it at a time), which alone took 23 s of the default 30 s on a busy 2-core machine. Nothing here measures speed.
describe("tessera throttle", { timeout: 180_000 }, () => {
  it("lists a suspended IP, lifts it (audited), and says so when there is nothing to lift", async () => {
    await withDb(async (deps) => {
      for (const email of ["a@example.com", "b@example.com"]) {
        await recordSignInFailure(deps, { ip: "192.0.2.9", userAgent: "x" }, { email, reason: "password" });
      }
    });
    const list = await cli(["throttle", "ips", "--json"]);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ ip: "192.0.2.9", suspensions: 1 })]);

    const lift = await cli(["throttle", "lift-ip", "192.0.2.9"]);
    expect(lift).toMatchObject({ code: 0, stdout: "Lifted the suspension of 192.0.2.9." });
    expect((await cli(["throttle", "ips"])).stdout).toBe("No IP address is suspended.");
    const again = await cli(["throttle", "lift-ip", "192.0.2.9"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("192.0.2.9 is not suspended.");
    expect((await cli(["throttle", "lift-ip", "not-an-ip"])).code).toBe(64);

    const events = await withDb((deps) =>
      deps.db.select().from(auditEvents).where(eq(auditEvents.event, "throttle.ip_lifted")),
    );
    expect(events).toEqual([expect.objectContaining({ userAgent: "tessera-cli", details: { ip: "192.0.2.9" } })]);
  });

  it("unlocks an account", async () => {
    const email = "locked@example.com";
    await withDb(async (deps) => {
      for (let i = 0; i < 2; i++) {
        await recordSignInFailure(deps, { ip: `198.51.100.${i}`, userAgent: "x" }, { email, reason: "password" });
      }
    });
    const res = await cli(["throttle", "unlock", "Locked@Example.com"]);
    expect(res).toMatchObject({ code: 0, stdout: "Cleared the failed sign-ins of Locked@Example.com." });
    const gate = await withDb((deps) => checkSignIn(deps, { ip: "198.51.100.50", userAgent: "x" }, { email }));
    expect(gate.accountLocked).toBe(false);
    expect((await cli(["throttle", "unlock", email])).stdout).toBe(`Nothing to clear for ${email}.`);
    expect((await cli(["throttle", "unlock"])).code).toBe(64);
  });
});
