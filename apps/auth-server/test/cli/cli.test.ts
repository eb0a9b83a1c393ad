import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatabase } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { testConfig } from "../../src/config/index.ts";
import { build } from "../contract.ts";

let dataDir: string;
let root: string;
const MASTER_KEY = "22".repeat(32);

function env() {
  return { NODE_ENV: "test", DATA_DIR: dataDir, TESSERA_MASTER_KEY: MASTER_KEY, LOG_LEVEL: "silent" };
}

async function cli(argv: string[], stdin?: string, answers?: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const asked: string[] = [];
  const code = await runCli(argv, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env: env(),
    ...(stdin !== undefined ? { readStdin: async () => stdin } : {}),
    ...(answers
      ? {
          promptSecret: async (question: string) => {
            asked.push(question);
            return answers.shift() ?? "";
          },
        }
      : {}),
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n"), asked };
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "tessera-cli-"));
  dataDir = join(root, "data");
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("tessera CLI on the embedded database", { timeout: 120_000 }, () => {
  let clientId: string;
  let firstSecret: string;
  let apiKey: string;

  it("lists the commands in --help", async () => {
    const res = await cli(["--help"]);
    expect(res.code).toBe(0);
    for (const name of [
      "admin create",
      "admin api-key create",
      "clients create",
      "clients rotate-secret",
      "keys rotate",
    ]) {
      expect(res.stdout).toContain(name);
    }
  });

  it("admin create makes the first admin, and refuses a second one without --force", async () => {
    const first = await cli(
      ["admin", "create", "--email", " Root@Example.COM ", "--password-stdin", "--json"],
      "a long enough password\n",
    );
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ id: expect.any(String), email: "root@example.com", created: true });

    const second = await cli(
      ["admin", "create", "--email", "other@example.com", "--password-stdin"],
      "another password!",
    );
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      "tessera admin create: An admin already exists. Pass --force to make another account an admin.",
    );

    const forced = await cli(["admin", "create", "--email", "other@example.com", "--force", "--json"]);
    expect(forced.code).toBe(0);
    const body = JSON.parse(forced.stdout);
    expect(body).toMatchObject({ email: "other@example.com", created: true });
    expect(body.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });

  it("admin create asks for the password twice on a terminal", async () => {
    const mismatch = await cli(["admin", "create", "--email", "tty@example.com", "--force"], undefined, [
      "first password!",
      "other password!",
    ]);
    expect(mismatch.asked).toEqual(["Password for tty@example.com: ", "Repeat the password: "]);
    expect(mismatch.code).toBe(65);
    expect(mismatch.stderr).toBe("tessera admin create: The passwords do not match; nothing was changed.");

    const ok = await cli(["admin", "create", "--email", "tty@example.com", "--force", "--json"], undefined, [
      "same password here",
      "same password here",
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ id: expect.any(String), email: "tty@example.com", created: true });
  });

  it("admin create refuses bad input with clear messages", async () => {
    expect((await cli(["admin", "create"])).code).toBe(64);
    const short = await cli(["admin", "create", "--email", "x@example.com", "--force", "--password-stdin"], "short\n");
    expect(short.code).toBe(65);
    expect(short.stderr).toContain("password: Use at least 8 characters.");
    const badEmail = await cli(
      ["admin", "create", "--email", "nope", "--force", "--password-stdin"],
      "long enough pw\n",
    );
    expect(badEmail.code).toBe(65);
    expect(badEmail.stderr).toContain("email: must be an email address");
  });

  it("admin api-key create needs to know which admin when several exist, and prints the key once", async () => {
    const ambiguous = await cli(["admin", "api-key", "create", "--name", "ci"]);
    expect(ambiguous.code).toBe(65);
    expect(ambiguous.stderr).toContain("email: several admins exist");
    const res = await cli(["admin", "api-key", "create", "--name", "ci", "--email", "root@example.com", "--json"]);
    expect(res.code).toBe(0);
    const body = JSON.parse(res.stdout);
    expect(body).toEqual({
      id: expect.any(String),
      name: "ci",
      admin: "root@example.com",
      key: expect.stringMatching(/^tak_/),
    });
    apiKey = body.key;
  });

  it("clients create registers a client with repeatable URI flags and prints client_id and client_secret", async () => {
    const res = await cli([
      "clients",
      "create",
      "--name",
      "Shop",
      "--redirect-uri",
      "https://shop.example/cb",
      "--redirect-uri",
      "http://127.0.0.1:4000/cb",
      "--post-logout-redirect-uri",
      "https://shop.example/",
      "--backchannel-logout-uri",
      "https://shop.example/bcl",
      "--first-party",
      "--json",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const body = JSON.parse(res.stdout);
    expect(body).toMatchObject({
      client_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      client_secret: expect.stringMatching(/^tcs_[A-Za-z0-9_-]{43}$/),
      name: "Shop",
      redirect_uris: ["https://shop.example/cb", "http://127.0.0.1:4000/cb"],
      post_logout_redirect_uris: ["https://shop.example/"],
      backchannel_logout_uri: "https://shop.example/bcl",
      first_party: true,
      direct_sign_in: false,
      disabled_at: null,
    });
    clientId = body.client_id;
    firstSecret = body.client_secret;
  });

  it("clients create: usage errors exit 64, invalid URIs exit 65 naming the field", async () => {
    const missing = await cli(["clients", "create", "--redirect-uri", "https://a.example/cb"]);
    expect(missing.code).toBe(64);
    expect(missing.stderr).toContain("tessera clients create: --name is required");
    expect(missing.stderr).toContain("Usage: tessera clients create --name NAME");

    const unknown = await cli(["clients", "create", "--name", "A", "--redirect-uri", "https://a.example/cb", "--wat"]);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain("--wat");

    const badAlg = await cli([
      "clients",
      "create",
      "--name",
      "A",
      "--redirect-uri",
      "https://a.example/cb",
      "--alg",
      "none",
    ]);
    expect(badAlg.code).toBe(64);

    const badUri = await cli(["clients", "create", "--name", "A", "--redirect-uri", "http://a.example/cb"]);
    expect(badUri.code).toBe(65);
    expect(badUri.stderr).toContain("(INVALID_REDIRECT_URI)");
    expect(badUri.stderr).toContain(
      "redirect_uris.0: must use https (http is allowed only for 127.0.0.1, [::1] and localhost)",
    );
  });

  it("clients list, show, update, rotate-secret and disable", async () => {
    const list = await cli(["clients", "list", "--json"]);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((c: { client_id: string }) => c.client_id)).toEqual([clientId]);
    expect(list.stdout).not.toContain(firstSecret);

    const show = await cli(["clients", "show", clientId]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`client_id:                  ${clientId}`);
    expect(show.stdout).not.toContain("client_secret");

    const missing = await cli(["clients", "show", "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("tessera clients show: No client with that id. (CLIENT_NOT_FOUND)");

    const update = await cli(["clients", "update", clientId, "--no-first-party", "--direct-sign-in", "--json"]);
    expect(update.code).toBe(0);
    expect(JSON.parse(update.stdout)).toMatchObject({ first_party: false, direct_sign_in: true });
    expect((await cli(["clients", "update", clientId])).code).toBe(64);
    expect((await cli(["clients", "update", clientId, "--first-party", "--no-first-party"])).code).toBe(64);

    const rotated = await cli(["clients", "rotate-secret", clientId, "--json"]);
    expect(rotated.code).toBe(0);
    const rotatedBody = JSON.parse(rotated.stdout);
    expect(rotatedBody.client_secret).toMatch(/^tcs_/);
    expect(rotatedBody.client_secret).not.toBe(firstSecret);
    expect(rotatedBody.previous_secret_expires_at).not.toBeNull();

    const disabled = await cli(["clients", "disable", clientId, "--json"]);
    expect(disabled.code).toBe(0);
    expect(JSON.parse(disabled.stdout).disabled_at).not.toBeNull();
    const active = await cli(["clients", "list", "--active", "--json"]);
    expect(JSON.parse(active.stdout)).toEqual([]);

    const enabled = await cli(["clients", "enable", clientId, "--access-token-ttl", "x"]);
    expect(enabled.code).toBe(64);
    const reenabled = await cli(["clients", "enable", clientId, "--json"]);
    expect(reenabled.code).toBe(0);
    expect(JSON.parse(reenabled.stdout).disabled_at).toBeNull();

    const ttl = await cli(["clients", "update", clientId, "--access-token-ttl", "900", "--json"]);
    expect(JSON.parse(ttl.stdout).access_token_ttl_seconds).toBe(900);
    const badTtl = await cli(["clients", "update", clientId, "--access-token-ttl", "5"]);
    expect(badTtl.code).toBe(65);
    expect(badTtl.stderr).toContain("access_token_ttl_seconds: must be at least 30");
    const noTtl = await cli(["clients", "update", clientId, "--no-access-token-ttl", "--json"]);
    expect(JSON.parse(noTtl.stdout).access_token_ttl_seconds).toBeNull();
  });

  it("keys rotate and keys list", async () => {
    const empty = await cli(["keys", "list", "--json"]);
    expect(JSON.parse(empty.stdout)).toEqual([]);
    const first = await cli(["keys", "rotate", "--json"]);
    expect(first.code).toBe(0);
    const firstBody = JSON.parse(first.stdout);
    expect(firstBody).toMatchObject({ active: { alg: "RS256" }, retired: [], publishedForSeconds: 360 });
    const second = await cli(["keys", "rotate", "--alg", "ES256", "--json"]);
    expect(JSON.parse(second.stdout).active.alg).toBe("ES256");
    const third = await cli(["keys", "rotate", "--json"]);
    expect(JSON.parse(third.stdout).retired).toEqual([firstBody.active.kid]);
    const list = JSON.parse((await cli(["keys", "list", "--json"])).stdout);
    expect(list.map((k: { alg: string; status: string }) => [k.alg, k.status])).toEqual([
      ["RS256", "retired"],
      ["ES256", "active"],
      ["RS256", "active"],
    ]);
    expect((await cli(["keys", "rotate", "--alg", "HS256"])).code).toBe(64);
  });

  it("refuses to open the data directory while a server holds it, with a clear message and exit 75", async () => {
    const server = await createDatabase({ dataDir });
    try {
      const res = await cli(["clients", "list"]);
      expect(res.code).toBe(75);
      expect(res.stderr).toContain(`The embedded database in ${dataDir} is in use by another Tessera process`);
      expect(res.stderr).toContain("stop the server");

      // What the CLI wrote is what the server serves: the CLI-made API key works at the admin API.
      await server.migrate();
      const app = await build(testConfig({ DATA_DIR: dataDir, TESSERA_MASTER_KEY: MASTER_KEY }), { database: server });
      try {
        const res2 = await app.inject({
          method: "GET",
          url: `/admin/api/v1/clients/${clientId}`,
          headers: { authorization: `Bearer ${apiKey}` },
        });
        expect(res2.statusCode).toBe(200);
        expect(res2.json()).toMatchObject({ client_id: clientId, name: "Shop" });
      } finally {
        await app.close();
      }
    } finally {
      await server.close();
    }
    // Released: the CLI works again.
    expect((await cli(["clients", "list"])).code).toBe(0);
  });
});

// Last: it adds a client to the shared data directory, which the listing tests above count.
describe("public clients (#13)", { timeout: 120_000 }, () => {
  it("clients create --public registers a public client: no secret, native redirects, web origins (#13)", async () => {
    const res = await cli([
      "clients",
      "create",
      "--public",
      "--require-dpop",
      "--name",
      "Desktop game",
      "--redirect-uri",
      "http://127.0.0.1/callback",
      "--redirect-uri",
      "com.example.game:/cb",
      "--web-origin",
      "https://play.example",
      "--json",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const body = JSON.parse(res.stdout);
    expect(body.client_secret).toBeUndefined();
    expect(body).toMatchObject({
      token_endpoint_auth_method: "none",
      redirect_uris: ["http://127.0.0.1/callback", "com.example.game:/cb"],
      web_origins: ["https://play.example"],
      require_dpop: true,
    });
    // Without --public a private-use scheme is refused (exit 65, naming the field).
    const confidential = await cli(["clients", "create", "--name", "X", "--redirect-uri", "com.example.game:/cb"]);
    expect(confidential.code).toBe(65);
    expect(confidential.stderr).toContain("redirect_uris.0: must be an absolute https:// URI");
  });
});
