import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditEvents, backchannelLogoutJobs, createDatabase, sessions, users } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { testConfig } from "../../src/config/index.ts";
import { createClient } from "../../src/libraries/clients/index.ts";
import { systemClock } from "../../src/libraries/clock.ts";
import { sha256 } from "../../src/libraries/crypto.ts";
import { signIn } from "../../src/libraries/sessions.ts";
import { insertRefreshToken } from "../../src/queries/refresh-tokens.ts";

let root: string;
let dataDir: string;
const env = () => ({ NODE_ENV: "test", DATA_DIR: dataDir, TESSERA_MASTER_KEY: "33".repeat(32), LOG_LEVEL: "silent" });

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: env() });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "tessera-cli-users-"));
  dataDir = join(root, "data");
  // An account signed in to one app that has a back-channel logout URI.
  const config = testConfig(env());
  const database = await createDatabase({ dataDir });
  try {
    await database.migrate();
    const deps = { db: database.db, clock: systemClock, config };
    const [user] = await database.db.insert(users).values({ email: "player@example.com" }).returning();
    const { client } = await createClient(deps, {
      name: "Game",
      redirectUris: ["https://game.example/cb"],
      backchannelLogoutUri: "https://game.example/bcl",
    });
    const { session } = await signIn(deps, database.db, {
      userId: (user as { id: string }).id,
      amr: ["pwd"],
      meta: { ip: "127.0.0.1", userAgent: "test" },
    });
    await insertRefreshToken(database.db, {
      tokenHash: sha256("tsr_fixture"),
      sessionId: session.id,
      clientId: client.id,
      userId: session.userId,
      scope: "openid",
    });
  } finally {
    await database.close();
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("tessera users disable|enable", { timeout: 120_000 }, () => {
  it("disables an account: every session ends, back-channel logout queued, audited", async () => {
    const res = await cli(["users", "disable", "Player@Example.com", "--json"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const body = JSON.parse(res.stdout);
    expect(body).toMatchObject({ email: "player@example.com", sessions_ended: 1 });
    expect(body.disabled_at).toMatch(/^\d{4}-/);

    const database = await createDatabase({ dataDir });
    try {
      const [session] = await database.db.select().from(sessions);
      expect(session?.revokedReason).toBe("account_disabled");
      const jobs = await database.db.select().from(backchannelLogoutJobs);
      expect(jobs.map((j) => j.logoutUri)).toEqual(["https://game.example/bcl"]);
      const events = await database.db.select().from(auditEvents).where(eq(auditEvents.event, "admin.user_disabled"));
      expect(events).toHaveLength(1);
      expect(events[0]?.userAgent).toBe("tessera-cli");
    } finally {
      await database.close();
    }
  });

  it("is idempotent and enables the account again", async () => {
    const again = await cli(["users", "disable", "player@example.com"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("0 session(s) ended");
    const enabled = await cli(["users", "enable", "player@example.com", "--json"]);
    expect(enabled.code).toBe(0);
    expect(JSON.parse(enabled.stdout)).toMatchObject({ email: "player@example.com", disabled_at: null });
  });

  it("says clearly when there is no such account or the arguments are wrong", async () => {
    const missing = await cli(["users", "disable", "nobody@example.com"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("tessera users disable: No account with the email nobody@example.com.");
    const usage = await cli(["users", "disable"]);
    expect(usage.code).toBe(64);
    expect(usage.stderr).toContain("Usage: tessera users disable EMAIL [--json]");
  });
});
