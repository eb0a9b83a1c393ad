import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditEvents, webhookDeliveries, webhookEndpoints } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/index.ts";
import { userAuthorizationOverview } from "../../src/libraries/authorization/index.ts";
import { getPlan } from "../../src/libraries/billing/plans.ts";
import { createClient } from "../../src/libraries/clients/index.ts";
import { getProvider, providerSecret } from "../../src/libraries/federation/providers.ts";
import { seedAdmin } from "../admin/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser } from "../oauth/helpers.ts";

let t: TestApp;
let base: string;
let key: string;
let adminId: string;
let dir: string;

beforeAll(async () => {
  // Payments on (the plans API answers BILLING_DISABLED otherwise); crypto-only plans never call BTCPay.
  t = await buildTestApp({
    BTCPAY_URL: "http://127.0.0.1:9",
    BTCPAY_API_KEY: "unused",
    BTCPAY_STORE_ID: "store",
    BTCPAY_WEBHOOK_SECRET: "unused-secret",
  });
  ({ key, userId: adminId } = await seedAdmin(t.app));
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), "tessera-remote-areas-"));
}, 120_000);
afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

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

describe("CLI remote mode for providers, plans, webhooks, roles and user authorization", () => {
  it("providers create|list|show|disable|enable act through the admin API; the secret file's content never comes back", async () => {
    const secretFile = join(dir, "github-secret");
    writeFileSync(secretFile, "remote-upstream-secret\n");
    const created = await cli([
      "providers",
      "create",
      "--preset",
      "github",
      "--client-id",
      "Iv1.remote",
      "--client-secret-file",
      secretFile,
      "--trusted-for-email",
      "--json",
    ]);
    expect([created.code, created.stderr]).toEqual([0, ""]);
    const view = JSON.parse(created.stdout);
    expect(view).toMatchObject({ slug: "github", type: "oauth2", client_id: "Iv1.remote", client_secret_set: true });
    expect(view.trusted_for_email).toBe(true);
    expect(created.stdout).not.toContain("remote-upstream-secret");
    const row = await getProvider(t.app.ctx, "github");
    expect(providerSecret(t.app.ctx, row)).toBe("remote-upstream-secret");

    const list = await cli(["providers", "list"]);
    expect(list.stdout).toMatch(/^github\s+oauth2\s+enabled\s+GitHub$/m);
    const shown = await cli(["providers", "show", "github"]);
    expect(shown.stdout).toContain("client_secret:      set (encrypted at rest)");
    const disabled = await cli(["providers", "disable", "github", "--json"]);
    expect(JSON.parse(disabled.stdout).enabled).toBe(false);
    expect((await getProvider(t.app.ctx, "github")).disabledAt).not.toBeNull();
    expect(JSON.parse((await cli(["providers", "enable", "github", "--json"])).stdout).enabled).toBe(true);

    const bad = await cli(["providers", "create", "--type", "oidc", "--slug", "corp"]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toContain("issuer: an OpenID provider needs its issuer URL");

    const events = (await t.app.ctx.db.select().from(auditEvents)).filter((e) => e.event.startsWith("admin.provider_"));
    expect(events.map((e) => [e.event, e.actorId])).toEqual([
      ["admin.provider_created", adminId],
      ["admin.provider_disabled", adminId],
      ["admin.provider_enabled", adminId],
    ]);
  });

  it("plans create|list|show|archive act through the admin API, with local mode's output", async () => {
    const created = await cli([
      "plans",
      "create",
      "--name",
      "remote-gold",
      "--crypto-price",
      "4.00",
      "--crypto-currency",
      "USD",
      "--entitlement",
      "gold",
      "--duration-days",
      "30",
    ]);
    expect([created.code, created.stderr]).toEqual([0, ""]);
    expect(created.stdout).toBe(
      "Created plan:\nremote-gold  one_time, 30 days\n  price: 4.00 USD (crypto)\n  entitlements: gold\n  apps: every app",
    );
    expect((await getPlan(t.app.ctx, "remote-gold")).durationDays).toBe(30);
    const list = await cli(["plans", "list", "--json"]);
    expect(JSON.parse(list.stdout).map((p: { name: string }) => p.name)).toEqual(["remote-gold"]);
    expect((await cli(["plans", "show", "remote-gold"])).stdout).toContain("entitlements: gold");
    const archived = await cli(["plans", "archive", "remote-gold"]);
    expect([archived.code, archived.stdout]).toEqual([0, "Archived plan remote-gold."]);
    expect(JSON.parse((await cli(["plans", "list", "--json"])).stdout)).toEqual([]);
    expect(JSON.parse((await cli(["plans", "list", "--all", "--json"])).stdout)).toHaveLength(1);
    const again = await cli(["plans", "archive", "remote-gold"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("PLAN_ARCHIVED");
    const rows = (await t.app.ctx.db.select().from(auditEvents)).filter((e) => e.event.startsWith("billing.plan_"));
    expect(rows.map((e) => [e.event, e.actorId])).toEqual([
      ["billing.plan_created", adminId],
      ["billing.plan_archived", adminId],
    ]);
  });

  it("clients webhook set|show|rotate-secret|remove and webhooks redeliver act through the admin API", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Hooked", redirectUris: ["https://hooked.example/cb"] });
    const id = client.clientId;
    const set = await cli([
      "clients",
      "webhook",
      "set",
      "--client",
      id,
      "--webhook-url",
      "https://hooked.example/hooks",
      "--event",
      "user.updated",
      "--json",
    ]);
    expect([set.code, set.stderr]).toEqual([0, ""]);
    const made = JSON.parse(set.stdout);
    expect(made).toMatchObject({ client_id: id, url: "https://hooked.example/hooks", events: ["user.updated"] });
    expect(made.secret).toEqual(expect.any(String));
    const shown = await cli(["clients", "webhook", "show", "--client", id]);
    expect(shown.stdout).toBe(`client_id: ${id}\nurl:       https://hooked.example/hooks\nevents:    user.updated`);
    const rotated = await cli(["clients", "webhook", "rotate-secret", "--client", id, "--json"]);
    expect(JSON.parse(rotated.stdout).secret).not.toBe(made.secret);
    expect(JSON.parse(rotated.stdout).previous_secret_expires_at).toEqual(expect.any(String));
    const at = await cli(["clients", "webhook", "rotate-secret", "--client", id, "--overlap-seconds", "0", "--json"]);
    expect([at.code, at.stderr]).toEqual([0, ""]);
    expect(JSON.parse(at.stdout).previous_secret_expires_at).toBeNull();
    const [endpoint] = await t.app.ctx.db
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.clientId, client.id));
    expect(endpoint?.previousSecretExpiresAt).toBeNull();

    const [dead] = await t.app.ctx.db
      .insert(webhookDeliveries)
      .values({ clientId: client.id, userId: adminId, eventType: "user.updated", payload: {}, deadAt: new Date() })
      .returning();
    const again = await cli(["webhooks", "redeliver", dead!.id]);
    expect([again.code, again.stdout]).toEqual([0, `Delivery ${dead!.id} queued again.`]);
    const twice = await cli(["webhooks", "redeliver", dead!.id]);
    expect(twice.stderr).toContain("WEBHOOK_DELIVERY_NOT_DEAD");
    const removed = await cli(["clients", "webhook", "remove", "--client", id]);
    expect([removed.code, removed.stdout]).toEqual([0, `Webhook of ${id} removed.`]);
    const gone = await cli(["clients", "webhook", "show", "--client", id]);
    expect(gone.stderr).toContain("WEBHOOK_NOT_FOUND");
    const webhookEvents = [
      "admin.client_webhook_set",
      "admin.client_webhook_secret_rotated",
      "admin.client_webhook_secret_rotated",
      "admin.webhook_redelivered",
      "admin.client_webhook_removed",
    ];
    const rows = (await t.app.ctx.db.select().from(auditEvents)).filter((e) => webhookEvents.includes(e.event));
    expect(rows.map((e) => [e.event, e.actorId])).toEqual(webhookEvents.map((event) => [event, adminId]));
  });

  it("roles create|list|delete act through the admin API, for an app and the global roles", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Roled", redirectUris: ["https://roled.example/cb"] });
    const id = client.clientId;
    const made = await cli(["roles", "create", "--client", id, "--name", "mod", "--permission", "chat:mute", "--json"]);
    expect([made.code, made.stderr]).toEqual([0, ""]);
    const role = JSON.parse(made.stdout);
    expect(role).toMatchObject({ client_id: id, name: "mod", permissions: ["chat:mute"] });
    const global = await cli(["roles", "create", "--global", "--name", "staff"]);
    expect(global.stdout).toMatch(/^Created role \(global\) {2}staff {2}[0-9a-f-]{36}$/);
    const list = await cli(["roles", "list", "--client", id]);
    expect(list.stdout).toBe(`${id}  mod  ${role.id}  [chat:mute]`);
    const everything = await cli(["roles", "list"]);
    expect(everything.code).toBe(64);
    const deleted = await cli(["roles", "delete", "--client", id, "--name", "mod"]);
    expect(deleted.stdout).toBe(`Deleted role ${id}  mod  ${role.id}  [chat:mute]; 0 assignment(s) removed.`);
    const missing = await cli(["roles", "delete", "--client", id, "--name", "mod"]);
    expect([missing.code, missing.stderr]).toEqual([
      1,
      "tessera roles delete: No role with that name in this app. (ROLE_NOT_FOUND)",
    ]);
    const rows = (await t.app.ctx.db.select().from(auditEvents)).filter((e) => e.event.startsWith("admin.role_"));
    expect(rows.map((e) => [e.event, e.actorId])).toEqual([
      ["admin.role_created", adminId],
      ["admin.role_created", adminId],
      ["admin.role_deleted", adminId],
    ]);
  });

  it("users grant-role|revoke-role and entitlements grant|revoke act through the admin API, by email", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Granted", redirectUris: ["https://granted.example/cb"] });
    const id = client.clientId;
    const user = await createUser(t.app, { email: "remote-player@example.com" });
    await cli(["roles", "create", "--client", id, "--name", "vip"]);
    const granted = await cli([
      "users",
      "grant-role",
      "--email",
      "Remote-Player@example.com",
      "--client",
      id,
      "--role",
      "vip",
      "--expires",
      "2099-01-01T00:00:00Z",
    ]);
    expect([granted.code, granted.stderr, granted.stdout]).toEqual([
      0,
      "",
      `remote-player@example.com has the role vip in ${id} until 2099-01-01T00:00:00.000Z.`,
    ]);
    const owns = await cli([
      "entitlements",
      "grant",
      "--email",
      "remote-player@example.com",
      "--name",
      "gold",
      "--client",
      id,
    ]);
    expect(owns.stdout).toBe(`remote-player@example.com owns gold in ${id}.`);
    const overview = await userAuthorizationOverview(t.app.ctx, user.id);
    expect([overview.roles.map((r) => r.role), overview.entitlements.map((e) => e.name)]).toEqual([["vip"], ["gold"]]);
    const revoked = await cli([
      "users",
      "revoke-role",
      "--email",
      "remote-player@example.com",
      "--client",
      id,
      "--role",
      "vip",
    ]);
    expect(revoked.stdout).toBe("remote-player@example.com no longer has the role vip.");
    const removed = await cli(["entitlements", "revoke", "--email", "remote-player@example.com", "--name", "gold"]);
    expect(removed.code).toBe(0);
    const after = await userAuthorizationOverview(t.app.ctx, user.id);
    expect([after.roles, after.entitlements]).toEqual([[], []]);
    const nobody = await cli(["entitlements", "grant", "--email", "nobody@example.com", "--name", "gold"]);
    expect([nobody.code, nobody.stderr]).toEqual([
      1,
      "tessera entitlements grant: No account with the email nobody@example.com.",
    ]);
    const rows = (await t.app.ctx.db.select().from(auditEvents)).filter(
      (e) => e.userId === user.id && e.event.startsWith("admin."),
    );
    expect(rows.map((e) => [e.event, e.actorId])).toEqual([
      ["admin.role_assigned", adminId],
      ["admin.entitlement_granted", adminId],
      ["admin.role_unassigned", adminId],
      ["admin.entitlement_revoked", adminId],
    ]);
  });
});
