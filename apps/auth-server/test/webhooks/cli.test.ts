import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditEvents, createDatabase, webhookEndpoints } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { testConfig } from "../../src/config/index.ts";
import { createClient } from "../../src/libraries/clients/index.ts";
import { systemClock } from "../../src/libraries/clock.ts";

/** `tessera clients webhook set|show|rotate-secret|remove` and `tessera webhooks deliveries` on the embedded database. */
let root: string;
let dataDir: string;
let game: string;
const env = () => ({ NODE_ENV: "test", DATA_DIR: dataDir, TESSERA_MASTER_KEY: "44".repeat(32), LOG_LEVEL: "silent" });

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: env() });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "tessera-cli-webhooks-"));
  dataDir = join(root, "data");
  const database = await createDatabase({ dataDir });
  try {
    await database.migrate();
    const deps = { db: database.db, clock: systemClock, config: testConfig(env()) };
    game = (await createClient(deps, { name: "Game", redirectUris: ["https://game.example/cb"] })).client.clientId;
  } finally {
    await database.close();
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("tessera clients webhook", { timeout: 120_000 }, () => {
  it("sets (secret once), shows, rotates, removes; refuses bad input with exit 64/65", async () => {
    const set = await cli([
      "clients",
      "webhook",
      "set",
      "--client",
      game,
      "--webhook-url",
      "https://game.example/webhooks/tessera",
      "--event",
      "roles.changed",
      "--event",
      "session.ended",
      "--json",
    ]);
    expect(set.stderr).toBe("");
    expect(set.code).toBe(0);
    const created = JSON.parse(set.stdout);
    expect(created).toMatchObject({
      client_id: game,
      url: "https://game.example/webhooks/tessera",
      events: ["roles.changed", "session.ended"],
    });
    expect(created.secret).toMatch(/^whsec_/);

    const show = await cli(["clients", "webhook", "show", "--client", game, "--json"]);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout).secret).toBeUndefined();
    expect(show.stdout).not.toContain(created.secret.slice(6));

    const rotated = await cli(["clients", "webhook", "rotate-secret", "--client", game]);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/secret: +whsec_/);
    expect(rotated.stdout).not.toContain(created.secret);

    for (const bad of ["604801", "1h", "1.5"]) {
      const refused = await cli(["clients", "webhook", "rotate-secret", "--client", game, "--overlap-seconds", bad]);
      expect(refused.code, bad).toBe(64);
      expect(refused.stderr).toContain("--overlap-seconds must be a whole number from 0 to 604800");
    }
    const short = await cli([
      "clients",
      "webhook",
      "rotate-secret",
      "--client",
      game,
      "--overlap-seconds",
      "0",
      "--json",
    ]);
    expect(short.code).toBe(0);
    expect(JSON.parse(short.stdout).previous_secret_expires_at).toBeNull();
    const store = await createDatabase({ dataDir });
    try {
      const [endpoint] = await store.db.select().from(webhookEndpoints);
      expect(endpoint?.previousSecretEncrypted).toBeNull();
      expect(endpoint?.previousSecretExpiresAt).toBeNull();
    } finally {
      await store.close();
    }

    const bad = await cli([
      "clients",
      "webhook",
      "set",
      "--client",
      game,
      "--webhook-url",
      "https://g.example/h",
      "--event",
      "x",
    ]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toContain("VALIDATION_FAILED");
    const missing = await cli(["clients", "webhook", "set", "--client", game, "--webhook-url", "https://g.example/h"]);
    expect(missing.code).toBe(64);
    const unknown = await cli(["clients", "webhook", "show", "--client", "nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("CLIENT_NOT_FOUND");

    const dead = await cli(["webhooks", "deliveries", "--state", "dead", "--json"]);
    expect(dead.code).toBe(0);
    expect(JSON.parse(dead.stdout)).toEqual([]);

    const removed = await cli(["clients", "webhook", "remove", "--client", game, "--json"]);
    expect(removed.code).toBe(0);
    expect(JSON.parse(removed.stdout)).toEqual({ client_id: game, removed: true });
    const gone = await cli(["clients", "webhook", "show", "--client", game]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("WEBHOOK_NOT_FOUND");

    const database = await createDatabase({ dataDir });
    try {
      const audits = await database.db.select().from(auditEvents);
      const mine = audits.filter((a) => a.event.startsWith("admin.client_webhook"));
      expect(mine.map((a) => a.event)).toEqual([
        "admin.client_webhook_set",
        "admin.client_webhook_secret_rotated",
        "admin.client_webhook_secret_rotated",
        "admin.client_webhook_removed",
      ]);
      expect(mine.map((a) => (a.details as { overlapSeconds?: number }).overlapSeconds)).toEqual([
        undefined,
        86400,
        0,
        undefined,
      ]);
      expect(mine.every((a) => (a.details as { via?: string }).via === "cli")).toBe(true);
      expect(JSON.stringify(audits)).not.toContain(created.secret.slice(6));
    } finally {
      await database.close();
    }
  });
});
