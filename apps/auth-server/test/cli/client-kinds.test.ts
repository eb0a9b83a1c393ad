import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";

/** `tessera clients create|update` for every kind of client (#13): grant types, public, guests, DPoP-bound. */
let root: string;
let dataDir: string;

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env: { NODE_ENV: "test", DATA_DIR: dataDir, TESSERA_MASTER_KEY: "33".repeat(32), LOG_LEVEL: "silent" },
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

const DEVICE = "urn:ietf:params:oauth:grant-type:device_code";

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "tessera-cli-kinds-"));
  dataDir = join(root, "data");
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("clients create|update for every kind of client", { timeout: 180_000 }, () => {
  it("a game server: --grant-types client_credentials, no redirect URI needed", async () => {
    const res = await cli([
      "clients",
      "create",
      "--name",
      "Match server",
      "--grant-types",
      "client_credentials",
      "--json",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const body = JSON.parse(res.stdout);
    expect(body).toMatchObject({ grant_types: ["client_credentials"], redirect_uris: [], guest_accounts: false });
    expect(body.client_secret).toMatch(/.{20,}/);
  });

  it("a console: device grant and refresh, comma-separated; a DPoP-bound public game with guests", async () => {
    const console_ = await cli([
      "clients",
      "create",
      "--name",
      "Console",
      "--grant-types",
      `${DEVICE},refresh_token`,
      "--json",
    ]);
    expect(console_.code).toBe(0);
    expect(JSON.parse(console_.stdout).grant_types).toEqual([DEVICE, "refresh_token"]);

    const game = await cli([
      "clients",
      "create",
      "--public",
      "--dpop-bound",
      "--allow-guests",
      "--name",
      "Desktop game",
      "--redirect-uri",
      "http://127.0.0.1/cb",
      "--grant-types",
      "authorization_code,refresh_token",
      "--json",
    ]);
    expect(game.stderr).toBe("");
    expect(game.code).toBe(0);
    const body = JSON.parse(game.stdout);
    expect(body).toMatchObject({
      token_endpoint_auth_method: "none",
      require_dpop: true,
      guest_accounts: true,
      grant_types: ["authorization_code", "refresh_token"],
    });
    expect(body.client_secret).toBeUndefined();

    const updated = await cli([
      "clients",
      "update",
      body.client_id,
      "--no-allow-guests",
      "--no-dpop-bound",
      "--grant-types",
      `authorization_code,refresh_token,${DEVICE}`,
      "--json",
    ]);
    expect(updated.stderr).toBe("");
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({
      require_dpop: false,
      guest_accounts: false,
      grant_types: ["authorization_code", "refresh_token", DEVICE],
    });
    const human = await cli(["clients", "show", body.client_id]);
    expect(human.stdout).toContain(`grant_types:                authorization_code refresh_token ${DEVICE}`);
    expect(human.stdout).toContain("guest_accounts:             false");
  });

  it("validation errors are codes with the field; contradictions and missing redirects are usage errors", async () => {
    const unknown = await cli(["clients", "create", "--name", "X", "--grant-types", "password", "--json"]);
    expect(unknown.code).toBe(65);
    expect(unknown.stderr).toContain("(VALIDATION_FAILED)");
    expect(unknown.stderr).toContain("grant_types");

    const noRedirect = await cli(["clients", "create", "--name", "X", "--grant-types", "authorization_code"]);
    expect(noRedirect.code).toBe(64);
    expect(noRedirect.stderr).toContain("--redirect-uri is required");

    const empty = await cli(["clients", "create", "--name", "X", "--grant-types", "client_credentials,"]);
    expect(empty.code).toBe(64);

    const created = await cli(["clients", "create", "--name", "Y", "--redirect-uri", "https://y.example/cb", "--json"]);
    const id = JSON.parse(created.stdout).client_id;
    const both = await cli(["clients", "update", id, "--allow-guests", "--no-allow-guests"]);
    expect(both.code).toBe(64);
    expect(both.stderr).toContain("contradict");
  });
});
