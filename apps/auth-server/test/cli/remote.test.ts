import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditEvents, clients } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { seedAdmin } from "../admin/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser } from "../oauth/helpers.ts";

let t: TestApp;
let base: string;
let key: string;
let adminId: string;
let dir: string;

beforeAll(async () => {
  t = await buildTestApp();
  ({ key, userId: adminId } = await seedAdmin(t.app));
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), "tessera-remote-"));
});
afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The CLI with no database settings at all: remote mode must not need one. */
async function cli(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env: { ...env } });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

describe("CLI remote mode (--url + admin API key)", () => {
  it("clients create acts through the admin API: the client exists on the server, audited with the key's admin", async () => {
    const result = await cli([
      "clients",
      "create",
      "--url",
      base,
      "--api-key",
      key,
      "--name",
      "Remote shop",
      "--redirect-uri",
      "https://remote.example/cb",
      "--json",
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const view = JSON.parse(result.stdout);
    expect(view.name).toBe("Remote shop");
    expect(view.client_secret).toEqual(expect.any(String));
    const [row] = await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, view.client_id));
    expect(row?.name).toBe("Remote shop");
    const [event] = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.clientId, view.client_id));
    expect(event?.actorId).toBe(adminId);
  });

  it("TESSERA_URL and TESSERA_API_KEY_FILE work as well (clients list, users disable)", async () => {
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, `${key}\n`);
    const env = { TESSERA_URL: `${base}/`, TESSERA_API_KEY_FILE: keyFile };
    const list = await cli(["clients", "list", "--json"], env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((c: { name: string }) => c.name)).toContain("Remote shop");

    const user = await createUser(t.app, { email: "remote-user@example.com" });
    const disabled = await cli(["users", "disable", "Remote-User@example.com", "--json"], env);
    expect(disabled.code).toBe(0);
    expect(JSON.parse(disabled.stdout)).toMatchObject({ id: user.id, disabled_at: expect.any(String) });
  });

  it("a wrong key exits 77 with the server's code, never echoing the key", async () => {
    const wrong = "tak_wrongwrongwrongwrongwrongwrongwrongwrong";
    const result = await cli(["clients", "list", "--url", base, "--api-key", wrong]);
    expect(result.code).toBe(77);
    expect(result.stderr).toContain("(UNAUTHENTICATED)");
    expect(result.stderr + result.stdout).not.toContain(wrong);
  });

  it("validation errors from the server exit 65 with the field; an unreachable server exits 69", async () => {
    const bad = await cli([
      "clients",
      "create",
      "--url",
      base,
      "--api-key",
      key,
      "--name",
      "x",
      "--redirect-uri",
      "ftp://x",
    ]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toContain("redirect_uris.0");
    const down = await cli(["clients", "list", "--url", "http://127.0.0.1:9", "--api-key", key]);
    expect(down.code).toBe(69);
  });

  it("a command without a remote form refuses --url instead of opening a local database", async () => {
    const result = await cli(["db", "migrate", "--url", base, "--api-key", key]);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain("does not take --url");
    const noKey = await cli(["clients", "list", "--url", base]);
    expect(noKey.code).toBe(64);
  });
});
