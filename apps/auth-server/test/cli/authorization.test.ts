import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditEvents, createDatabase, userRoles, users } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { testConfig } from "../../src/config/index.ts";
import { createClient } from "../../src/libraries/clients/index.ts";
import { systemClock } from "../../src/libraries/clock.ts";

/** The #11 CLI on the embedded database: the command names and flags are an interface (checks use them). */
let root: string;
let dataDir: string;
let game: string;
let shop: string;
const env = () => ({ NODE_ENV: "test", DATA_DIR: dataDir, TESSERA_MASTER_KEY: "44".repeat(32), LOG_LEVEL: "silent" });

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: env() });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

async function withDb<T>(fn: (db: Awaited<ReturnType<typeof createDatabase>>["db"]) => Promise<T>): Promise<T> {
  const database = await createDatabase({ dataDir });
  try {
    return await fn(database.db);
  } finally {
    await database.close();
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "tessera-cli-authorization-"));
  dataDir = join(root, "data");
  const config = testConfig(env());
  const database = await createDatabase({ dataDir });
  try {
    await database.migrate();
    const deps = { db: database.db, clock: systemClock, config };
    await database.db.insert(users).values({ email: "mod@example.com" });
    game = (await createClient(deps, { name: "Game", redirectUris: ["https://game.example/cb"] })).client.clientId;
    shop = (await createClient(deps, { name: "Shop", redirectUris: ["https://shop.example/cb"] })).client.clientId;
  } finally {
    await database.close();
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Each command opens the embedded database (about a second, more on a loaded machine): generous time per test.
describe("tessera roles / users grant-role / entitlements / users show", { timeout: 120_000 }, () => {
  it("creates a role with permissions, lists it, grants it, shows it, revokes it", async () => {
    const created = await cli([
      "roles",
      "create",
      "--client",
      game,
      "--name",
      "moderator",
      "--permission",
      "chat:mute",
      "--permission",
      "chat:kick",
      "--json",
    ]);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({
      client_id: game,
      name: "moderator",
      permissions: ["chat:kick", "chat:mute"],
    });
    expect((await cli(["roles", "create", "--global", "--name", "staff"])).code).toBe(0);

    const list = await cli(["roles", "list", "--client", game, "--json"]);
    expect(JSON.parse(list.stdout).roles.map((r: { name: string }) => r.name)).toEqual(["moderator"]);
    const all = await cli(["roles", "list", "--json"]);
    expect(
      JSON.parse(all.stdout).roles.map((r: { name: string; client_id: string | null }) => [r.client_id, r.name]),
    ).toEqual(
      expect.arrayContaining([
        [game, "moderator"],
        [null, "staff"],
      ]),
    );

    const granted = await cli([
      "users",
      "grant-role",
      "--email",
      "MOD@example.com",
      "--client",
      game,
      "--role",
      "moderator",
      "--json",
    ]);
    expect(granted.code).toBe(0);
    expect(JSON.parse(granted.stdout)).toMatchObject({ role: "moderator", client_id: game, active: true });
    const entitled = await cli([
      "entitlements",
      "grant",
      "--email",
      "mod@example.com",
      "--name",
      "premium",
      "--client",
      shop,
      "--expires",
      "2999-01-01T00:00:00Z",
      "--json",
    ]);
    expect(entitled.code).toBe(0);
    expect(JSON.parse(entitled.stdout)).toMatchObject({ name: "premium", client_ids: [shop], source: "admin" });

    const shown = await cli(["users", "show", "--email", "mod@example.com", "--json"]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      email: "mod@example.com",
      roles: [{ role: "moderator", client_id: game, client_name: "Game", active: true }],
      entitlements: [{ name: "premium", client_ids: [shop], expires_at: "2999-01-01T00:00:00.000Z", active: true }],
    });

    expect(
      (await cli(["users", "revoke-role", "--email", "mod@example.com", "--client", game, "--role", "moderator"])).code,
    ).toBe(0);
    expect((await cli(["entitlements", "revoke", "--email", "mod@example.com", "--name", "premium"])).code).toBe(0);
    const after = JSON.parse((await cli(["users", "show", "--email", "mod@example.com", "--json"])).stdout);
    expect(after).toMatchObject({ roles: [], entitlements: [] });
    // Every change is audited with the CLI as the actor.
    const events = await withDb((db) => db.select().from(auditEvents));
    const names = events.map((e) => e.event);
    for (const event of [
      "admin.role_created",
      "admin.role_assigned",
      "admin.entitlement_granted",
      "admin.role_unassigned",
      "admin.entitlement_revoked",
    ]) {
      expect(names).toContain(event);
    }
    expect(events.find((e) => e.event === "admin.role_assigned")?.details).toMatchObject({ via: "cli", before: null });
  });

  it("answers hostile input with a message and an exit code, writing nothing", async () => {
    const dup = await cli(["roles", "create", "--client", game, "--name", "moderator"]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain("ROLE_NAME_TAKEN");
    const bad = await cli(["roles", "create", "--client", game, "--name", "no spaces please"]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toContain("VALIDATION_FAILED");
    const unknownClient = await cli(["roles", "create", "--client", "nope", "--name", "x"]);
    expect(unknownClient.code).toBe(1);
    expect(unknownClient.stderr).toContain("CLIENT_NOT_FOUND");
    const both = await cli(["roles", "create", "--client", game, "--global", "--name", "x"]);
    expect(both.code).toBe(64);
    // Another app's role name: the shop has no moderator.
    const otherApp = await cli([
      "users",
      "grant-role",
      "--email",
      "mod@example.com",
      "--client",
      shop,
      "--role",
      "moderator",
    ]);
    expect(otherApp.code).toBe(1);
    expect(otherApp.stderr).toContain("ROLE_NOT_FOUND");
    const nobody = await cli([
      "users",
      "grant-role",
      "--email",
      "nobody@example.com",
      "--client",
      game,
      "--role",
      "moderator",
    ]);
    expect(nobody.code).toBe(1);
    const past = await cli([
      "entitlements",
      "grant",
      "--email",
      "mod@example.com",
      "--name",
      "premium",
      "--expires",
      "yesterday",
    ]);
    expect(past.code).toBe(65);
    const notGranted = await cli(["entitlements", "revoke", "--email", "mod@example.com", "--name", "premium"]);
    expect(notGranted.code).toBe(1);
    expect(notGranted.stderr).toContain("ENTITLEMENT_NOT_GRANTED");
    expect(await withDb((db) => db.select().from(userRoles))).toEqual([]);
    // Help says that revoke leaves purchases alone.
    const help = await cli(["entitlements", "revoke", "--help"]);
    expect(help.stdout).toContain("Grants from purchases are not touched");
  });

  it("deletes a role with its assignments", async () => {
    await cli(["users", "grant-role", "--email", "mod@example.com", "--global", "--role", "staff"]);
    const deleted = await cli(["roles", "delete", "--global", "--name", "staff", "--json"]);
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toMatchObject({ role: { name: "staff" }, assignments_removed: 1 });
    const missing = await cli(["roles", "delete", "--global", "--name", "staff"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("ROLE_NOT_FOUND");
    expect(await withDb((db) => db.select().from(userRoles))).toEqual([]);
  });
});
