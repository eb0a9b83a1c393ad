import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditEvents, identityProviders } from "@tessera/db";
import { eq, like } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { providerSecret } from "../../src/libraries/federation/providers.ts";
import { seedAdmin } from "../admin/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

/** Providers managed through the admin API and the CLI; secrets sealed; per-client buttons; disabled = gone. */
let t: TestApp;
let authorization: string;
const SECRET = "gh-secret-0123456789abcdef0123456789abcdef";

beforeAll(async () => {
  t = await buildTestApp();
  ({ authorization } = await seedAdmin(t.app));
});
afterAll(() => t.close());

const api = (method: "GET" | "POST", url: string, payload?: unknown, auth = authorization) =>
  t.app.inject({
    method,
    url,
    headers: { authorization: auth, ...(payload === undefined ? {} : { "content-type": "application/json" }) },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });

describe("admin API /admin/api/v1/providers", () => {
  it("creates a GitHub preset; the secret is sealed with the master key and never answered or audited", async () => {
    const res = await api("POST", "/admin/api/v1/providers", {
      slug: "github",
      type: "oauth2",
      preset: "github",
      client_id: "Iv1.abc",
      client_secret: SECRET,
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe("/admin/api/v1/providers/github");
    const body = res.json();
    expect(body).toMatchObject({
      slug: "github",
      type: "oauth2",
      preset: "github",
      display_name: "GitHub",
      client_id: "Iv1.abc",
      client_secret_set: true,
      scopes: ["read:user", "user:email"],
      trusted_for_email: false,
      client_ids: null,
      enabled: true,
    });
    expect(res.body).not.toContain(SECRET);
    const [row] = await t.app.ctx.db.select().from(identityProviders).where(eq(identityProviders.slug, "github"));
    expect(row?.clientSecretEncrypted).toMatch(/^v1\./);
    expect(row?.clientSecretEncrypted).not.toContain(SECRET);
    expect(providerSecret(t.app.ctx, row!)).toBe(SECRET);
    const audited = await t.app.ctx.db.select().from(auditEvents).where(like(auditEvents.event, "admin.provider_%"));
    expect(audited.map((a) => a.event)).toContain("admin.provider_created");
    expect(JSON.stringify(audited)).not.toContain(SECRET);
  });

  it("refuses bad input with field errors: reserved slug, http issuer off loopback, missing secret, duplicate", async () => {
    const reserved = await api("POST", "/admin/api/v1/providers", {
      slug: "otp",
      type: "oidc",
      issuer: "https://id.example",
      client_id: "x",
      client_secret: "y",
    });
    expect(reserved.statusCode).toBe(400);
    expect(reserved.json().error.code).toBe("VALIDATION_FAILED");
    expect(reserved.json().error.fields).toContainEqual({ field: "slug", message: "this name is reserved" });
    const insecure = await api("POST", "/admin/api/v1/providers", {
      slug: "plain",
      type: "oidc",
      issuer: "http://id.example",
      client_id: "x",
      client_secret: "y",
    });
    expect(insecure.statusCode).toBe(400);
    expect(insecure.json().error.fields[0].field).toBe("issuer");
    const noSecret = await api("POST", "/admin/api/v1/providers", {
      slug: "dc",
      type: "oauth2",
      preset: "discord",
      client_id: "x",
    });
    expect(noSecret.statusCode).toBe(400);
    expect(noSecret.json().error.fields).toContainEqual({
      field: "client_secret",
      message: "the client secret registered at the provider is required",
    });
    const dup = await api("POST", "/admin/api/v1/providers", { slug: "github", type: "steam" });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.code).toBe("PROVIDER_EXISTS");
    const anonymous = await api("GET", "/admin/api/v1/providers", undefined, "Bearer nope");
    expect(anonymous.statusCode).toBe(401);
  });

  it("shows buttons per client (client_ids), and a disabled provider disappears and signs nobody in", async () => {
    const created = await api("POST", "/admin/api/v1/providers", {
      slug: "steam",
      type: "steam",
      client_ids: ["game-client"],
    });
    expect(created.statusCode).toBe(201);
    const generic = await t.app.inject({ method: "GET", url: "/login" });
    expect(generic.body).toContain('href="/federation/github/start"');
    expect(generic.body).not.toContain("/federation/steam/start");
    const game = await t.app.inject({ method: "GET", url: "/login?client_id=game-client" });
    expect(game.body).toContain('href="/federation/steam/start?client_id=game-client"');
    const register = await t.app.inject({ method: "GET", url: "/register?client_id=game-client" });
    expect(register.body).toContain("/federation/steam/start?client_id=game-client");
    const hidden = await t.app.inject({ method: "GET", url: "/federation/steam/start" });
    expect(hidden.statusCode).toBe(404);

    const disabled = await api("POST", "/admin/api/v1/providers/github/disable", {});
    expect(disabled.statusCode).toBe(200);
    expect(disabled.json().enabled).toBe(false);
    expect((await t.app.inject({ method: "GET", url: "/login" })).body).not.toContain("/federation/github/start");
    const start = await t.app.inject({ method: "GET", url: "/federation/github/start" });
    expect(start.statusCode).toBe(404);
    expect(start.body).toContain("PROVIDER_NOT_FOUND");
    const list = await api("GET", "/admin/api/v1/providers");
    expect(list.json().providers.map((p: { slug: string; enabled: boolean }) => [p.slug, p.enabled])).toEqual([
      ["github", false],
      ["steam", true],
    ]);
    expect((await api("GET", "/admin/api/v1/providers/nope")).statusCode).toBe(404);
  });
});

describe("tessera providers (CLI)", () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "tessera-providers-cli-"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function cli(argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const env = {
      NODE_ENV: "test",
      DATA_DIR: join(root, "data"),
      TESSERA_MASTER_KEY: "33".repeat(32),
      LOG_LEVEL: "silent",
    };
    const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env });
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  }

  it("create --preset github --client-secret-file, and --type oidc --issuer (with --json)", async () => {
    expect((await cli(["db", "migrate"])).code).toBe(0);
    const secretFile = join(root, "gh-secret");
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    const created = await cli([
      "providers",
      "create",
      "--preset",
      "github",
      "--client-id",
      "Iv1.cli",
      "--client-secret-file",
      secretFile,
      "--json",
    ]);
    expect(created.code).toBe(0);
    expect(created.stdout).not.toContain(SECRET);
    expect(JSON.parse(created.stdout)).toMatchObject({ slug: "github", client_secret_set: true, enabled: true });
    const oidc = await cli([
      "providers",
      "create",
      "--slug",
      "gitlab",
      "--type",
      "oidc",
      "--issuer",
      "https://gitlab.example",
      "--client-id",
      "abc",
      "--client-secret-file",
      secretFile,
      "--trusted-for-email",
      "--json",
    ]);
    expect(oidc.code).toBe(0);
    expect(JSON.parse(oidc.stdout)).toMatchObject({
      type: "oidc",
      trusted_for_email: true,
      scopes: ["openid", "email", "profile"],
    });
  }, 90_000);

  it("list, show, disable, and refusals with exit codes", async () => {
    const list = await cli(["providers", "list", "--json"]);
    expect(JSON.parse(list.stdout).providers.map((p: { slug: string }) => p.slug)).toEqual(["github", "gitlab"]);
    expect(JSON.parse((await cli(["providers", "show", "gitlab", "--json"])).stdout).issuer).toBe(
      "https://gitlab.example",
    );
    const disabled = await cli(["providers", "disable", "github", "--json"]);
    expect(JSON.parse(disabled.stdout).enabled).toBe(false);
    const missing = await cli(["providers", "show", "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("PROVIDER_NOT_FOUND");
    const bad = await cli(["providers", "create", "--slug", "x1", "--type", "oidc", "--issuer", "http://evil.example"]);
    expect(bad.code).toBe(65);
  }, 90_000);
});
