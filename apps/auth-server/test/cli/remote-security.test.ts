import type { AddressInfo } from "node:net";
import { auditEvents, webhookDeliveries } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeClient } from "../../src/cli/commands/clients.ts";
import { runCli } from "../../src/cli/index.ts";
import { userAuthorizationOverview } from "../../src/libraries/authorization/index.ts";
import { createClient, getClient } from "../../src/libraries/clients/index.ts";
import { keyPublishWindowSeconds, listSigningKeys } from "../../src/libraries/keys/index.ts";
import { recordSignInFailure } from "../../src/libraries/throttle/failures.ts";
import { listIpSuspensions } from "../../src/libraries/throttle/operator.ts";
import { listWebhookDeliveries } from "../../src/libraries/webhooks/index.ts";
import { clientView } from "../../src/routes/admin/client-wire.ts";
import { seedAdmin } from "../admin/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser } from "../oauth/helpers.ts";

let t: TestApp;
let base: string;
let key: string;
let adminId: string;

beforeAll(async () => {
  t = await buildTestApp({ THROTTLE_IP_MAX_FAILURES: "3", THROTTLE_IP_SUSPEND_BASE_SECONDS: "120" });
  ({ key, userId: adminId } = await seedAdmin(t.app));
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}, 120_000);
afterAll(() => t.close());

/** The CLI in remote mode through the environment, with no database settings at all. */
async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    env: { TESSERA_URL: base, TESSERA_API_KEY: key },
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

/** What local mode's `keys list` prints for the server's keys (same rows, same format). */
async function localKeyRows() {
  return (await listSigningKeys(t.app.ctx)).map(({ row, status }) => ({
    kid: row.kid,
    alg: row.alg,
    status,
    created_at: row.createdAt.toISOString(),
    retired_at: row.retiredAt?.toISOString() ?? null,
  }));
}

describe("CLI remote mode for keys, throttle, webhooks deliveries, users show and clients update", {
  timeout: 60_000,
}, () => {
  it("keys rotate and keys list: local mode's output (human and --json), audited with the key's admin", async () => {
    await listSigningKeys(t.app.ctx);
    const before = await localKeyRows();
    const rotated = await cli(["keys", "rotate", "--alg", "ES256", "--json"]);
    expect([rotated.code, rotated.stderr]).toEqual([0, ""]);
    const after = await localKeyRows();
    const active = after.find(
      (k) => k.status === "active" && k.alg === "ES256" && !before.some((b) => b.kid === k.kid),
    );
    expect(active).toBeDefined();
    const window = keyPublishWindowSeconds(t.app.ctx.config);
    const retired = before.filter((b) => b.alg === "ES256" && b.status === "active").map((b) => b.kid);
    expect(JSON.parse(rotated.stdout)).toEqual({
      active: { kid: active?.kid, alg: "ES256" },
      retired,
      publishedForSeconds: window,
    });
    expect(rotated.stdout).toBe(
      JSON.stringify({ active: { kid: active?.kid, alg: "ES256" }, retired, publishedForSeconds: window }, null, 2),
    );

    const human = await cli(["keys", "rotate", "--alg", "ES256"]);
    expect([human.code, human.stderr]).toEqual([0, ""]);
    const latest = (await localKeyRows()).find((k) => k.status === "active" && k.alg === "ES256");
    expect(human.stdout).toBe(
      [
        `New ES256 signing key ${latest?.kid} is active.`,
        `Retired ${active?.kid}: still published in the JWKS for ${window} s.`,
        "Running servers pick up the new key within a minute.",
      ].join("\n"),
    );
    const events = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.event, "admin.signing_key_rotated"));
    expect(events.map((e) => e.actorId)).toEqual([adminId, adminId]);

    const rows = await localKeyRows();
    const list = await cli(["keys", "list"]);
    expect([list.code, list.stderr]).toEqual([0, ""]);
    expect(list.stdout).toBe(
      rows.map((r) => `${r.kid}  ${r.alg.padEnd(5)}  ${r.status.padEnd(7)}  created ${r.created_at}`).join("\n"),
    );
    const json = await cli(["keys", "list", "--json"]);
    expect(json.stdout).toBe(JSON.stringify(rows, null, 2));

    const bad = await cli(["keys", "rotate", "--alg", "HS256"]);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain("--alg must be one of RS256, ES256, EdDSA");
  });

  it("throttle ips and throttle lift-ip: local mode's output and failure, audited with the key's admin", async () => {
    expect((await cli(["throttle", "ips"])).stdout).toBe("No IP address is suspended.");
    for (let i = 0; i < 3; i++) {
      await recordSignInFailure(
        t.app.ctx,
        { ip: "203.0.113.9", userAgent: "x" },
        { email: `v${i}@example.com`, reason: "password" },
      );
    }
    const rows = await listIpSuspensions(t.app.ctx, 500);
    expect(rows).toHaveLength(1);
    const ips = await cli(["throttle", "ips"]);
    expect([ips.code, ips.stderr]).toEqual([0, ""]);
    expect(ips.stdout).toBe(`203.0.113.9  until ${rows[0]?.suspendedUntil}  (suspension 1)`);
    // Local mode prints the library's rows as they are (camelCase), and so does remote mode.
    expect((await cli(["throttle", "ips", "--json"])).stdout).toBe(JSON.stringify(rows, null, 2));

    const lifted = await cli(["throttle", "lift-ip", "203.0.113.9"]);
    expect([lifted.code, lifted.stderr, lifted.stdout]).toEqual([0, "", "Lifted the suspension of 203.0.113.9."]);
    expect(await listIpSuspensions(t.app.ctx, 500)).toEqual([]);
    const [event] = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "throttle.ip_lifted"));
    expect(event?.actorId).toBe(adminId);

    const again = await cli(["throttle", "lift-ip", "203.0.113.9"]);
    expect([again.code, again.stderr]).toEqual([1, "tessera throttle lift-ip: 203.0.113.9 is not suspended."]);
    const notIp = await cli(["throttle", "lift-ip", "nope"]);
    expect([notIp.code, notIp.stderr]).toEqual([64, expect.stringContaining('"nope" is not an IPv4 or IPv6 address')]);
  });

  it("throttle unlock <email>: clears the account's failures through the API, local mode's words, audited", async () => {
    const user = await createUser(t.app);
    for (const ip of ["198.51.100.1", "198.51.100.2"]) {
      await recordSignInFailure(t.app.ctx, { ip, userAgent: "x" }, { email: user.email, reason: "password" });
    }
    const unlocked = await cli(["throttle", "unlock", user.email]);
    expect([unlocked.code, unlocked.stderr, unlocked.stdout]).toEqual([
      0,
      "",
      `Cleared the failed sign-ins of ${user.email}.`,
    ]);
    const events = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.event, "throttle.account_unlocked"));
    expect(events.map((e) => [e.actorId, e.userId, e.details])).toEqual([[adminId, user.id, { cleared: true }]]);

    const again = await cli(["throttle", "unlock", user.email]);
    expect([again.code, again.stdout]).toEqual([0, `Nothing to clear for ${user.email}.`]);
    const bad = await cli(["throttle", "unlock", "nobody"]);
    expect([bad.code, bad.stderr]).toEqual([64, expect.stringContaining('"nobody" is not an email address')]);
  });

  it("webhooks deliveries: local mode's output (human and --json) and filters", async () => {
    expect((await cli(["webhooks", "deliveries"])).stdout).toBe("No deliveries.");
    const { client } = await createClient(t.app.ctx, { name: "Hooked", redirectUris: ["https://hooked.example/cb"] });
    await t.app.ctx.db.insert(webhookDeliveries).values([
      {
        clientId: client.id,
        userId: adminId,
        eventType: "user.updated",
        payload: {},
        attempts: 8,
        lastError: "HTTP 500",
        deadAt: new Date(),
      },
      { clientId: client.id, userId: adminId, eventType: "user.deleted", payload: {} },
    ]);
    const rows = await listWebhookDeliveries(t.app.ctx, { limit: 100 });
    expect(rows).toHaveLength(2);
    const human = await cli(["webhooks", "deliveries"]);
    expect([human.code, human.stderr]).toEqual([0, ""]);
    expect(human.stdout).toBe(
      rows
        .map((d) => `${d.id}  ${d.state.padEnd(9)}  ${d.eventType.padEnd(20)}  ${d.clientId}  ${d.lastError ?? ""}`)
        .join("\n"),
    );
    expect((await cli(["webhooks", "deliveries", "--json"])).stdout).toBe(JSON.stringify(rows, null, 2));
    const other = (await createClient(t.app.ctx, { name: "Other", redirectUris: ["https://other.example/cb"] })).client;
    await t.app.ctx.db
      .insert(webhookDeliveries)
      .values({ clientId: other.id, userId: adminId, eventType: "user.updated", payload: {}, deadAt: new Date() });
    const dead = await listWebhookDeliveries(t.app.ctx, { limit: 100, state: "dead", clientId: client.clientId });
    expect(dead).toHaveLength(1);
    const filtered = await cli(["webhooks", "deliveries", "--state", "dead", "--client", client.clientId]);
    expect(filtered.stdout).toBe(`${dead[0]?.id}  dead       user.updated          ${client.clientId}  HTTP 500`);
    const deadJson = await cli(["webhooks", "deliveries", "--state", "dead", "--client", client.clientId, "--json"]);
    expect(deadJson.stdout).toBe(JSON.stringify(dead, null, 2));
    const one = await cli(["webhooks", "deliveries", "--limit", "1", "--json"]);
    expect(JSON.parse(one.stdout)).toEqual(
      JSON.parse(JSON.stringify(await listWebhookDeliveries(t.app.ctx, { limit: 1 }))),
    );
    const bad = await cli(["webhooks", "deliveries", "--limit", "0"]);
    expect([bad.code, bad.stderr]).toEqual([64, expect.stringContaining("--limit must be 1 to 500")]);
  });

  it("users show: local mode's output (human and --json), roles by app name and entitlements by name", async () => {
    const user = await createUser(t.app, { email: "shown@example.com" });
    const zeta = (await createClient(t.app.ctx, { name: "Zeta", redirectUris: ["https://zeta.example/cb"] })).client;
    const alpha = (await createClient(t.app.ctx, { name: "Alpha", redirectUris: ["https://alpha.example/cb"] })).client;
    const steps = [
      ["roles", "create", "--client", zeta.clientId, "--name", "editor"],
      ["roles", "create", "--client", alpha.clientId, "--name", "viewer"],
      ["roles", "create", "--client", alpha.clientId, "--name", "admin"],
      ["roles", "create", "--global", "--name", "staff"],
      ["users", "grant-role", "--email", "shown@example.com", "--client", zeta.clientId, "--role", "editor"],
      ["users", "grant-role", "--email", "shown@example.com", "--client", alpha.clientId, "--role", "viewer"],
      ["users", "grant-role", "--email", "shown@example.com", "--client", alpha.clientId, "--role", "admin"],
      ["users", "grant-role", "--email", "shown@example.com", "--global", "--role", "staff"],
      ["entitlements", "grant", "--email", "shown@example.com", "--name", "zzz-pro"],
      ["entitlements", "grant", "--email", "shown@example.com", "--name", "aaa-basic", "--client", alpha.clientId],
    ];
    for (const step of steps) expect((await cli(step)).stderr).toBe("");
    const overview = await userAuthorizationOverview(t.app.ctx, user.id);
    expect(overview.roles.map((r) => r.role)).toEqual(["staff", "admin", "viewer", "editor"]);
    const json = await cli(["users", "show", "--email", "Shown@example.com", "--json"]);
    expect([json.code, json.stderr]).toEqual([0, ""]);
    expect(json.stdout).toBe(JSON.stringify({ id: user.id, email: "shown@example.com", ...overview }, null, 2));
    const human = await cli(["users", "show", "--email", "shown@example.com"]);
    expect(human.stdout).toBe(
      [
        `shown@example.com (${user.id})`,
        "Roles:",
        "  (global)  staff",
        `  ${alpha.clientId}  admin`,
        `  ${alpha.clientId}  viewer`,
        `  ${zeta.clientId}  editor`,
        "Entitlements:",
        `  aaa-basic  ${alpha.clientId}  admin`,
        "  zzz-pro  every app  admin",
      ].join("\n"),
    );
    const nobody = await cli(["users", "show", "--email", "nobody@example.com"]);
    expect([nobody.code, nobody.stderr]).toEqual([
      1,
      "tessera users show: No account with the email nobody@example.com.",
    ]);
    const empty = await createUser(t.app, { email: "empty@example.com" });
    expect((await cli(["users", "show", "--email", "empty@example.com"])).stdout).toBe(
      `empty@example.com (${empty.id})\nRoles:\n  none\nEntitlements:\n  none`,
    );
  });

  it("clients update: the patch under the admin API's names, local mode's output, audited with the key's admin", async () => {
    const { client } = await createClient(t.app.ctx, {
      name: "Before",
      redirectUris: ["https://before.example/cb"],
      logoUri: "https://before.example/logo.png",
    });
    const id = client.clientId;
    const updated = await cli([
      "clients",
      "update",
      id,
      "--name",
      "After",
      "--redirect-uri",
      "https://after.example/cb",
      "--redirect-uri",
      "https://after.example/cb2",
      "--no-logo-uri",
      "--first-party",
      "--access-token-ttl",
      "600",
      "--scope",
      "openid",
      "--scope",
      "email",
      "--json",
    ]);
    expect([updated.code, updated.stderr]).toEqual([0, ""]);
    const row = await getClient(t.app.ctx.db, id);
    expect(row).toMatchObject({
      name: "After",
      redirectUris: ["https://after.example/cb", "https://after.example/cb2"],
      logoUrl: null,
      firstParty: true,
      accessTokenTtlSeconds: 600,
      allowedScopes: ["openid", "email"],
    });
    expect(updated.stdout).toBe(JSON.stringify(clientView(row), null, 2));
    const human = await cli(["clients", "update", id, "--no-first-party"]);
    expect([human.code, human.stderr]).toEqual([0, ""]);
    expect(human.stdout).toBe(describeClient(clientView(await getClient(t.app.ctx.db, id))));
    expect(human.stdout).toContain("After");
    const events = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.clientId, id));
    expect(events.filter((e) => e.event === "admin.client_updated").map((e) => e.actorId)).toEqual([adminId, adminId]);

    const nothing = await cli(["clients", "update", id]);
    expect([nothing.code, nothing.stderr]).toEqual([64, expect.stringContaining("nothing to update")]);
    const bad = await cli(["clients", "update", id, "--redirect-uri", "ftp://x"]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toContain("redirect_uris.0");
  });
});
