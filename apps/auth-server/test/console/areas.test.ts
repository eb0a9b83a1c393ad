import { auditEvents, identityProviders, webhookDeliveries } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPermission, createRole, listUserRoles } from "../../src/libraries/authorization/index.ts";
import { createPlan, getPlan } from "../../src/libraries/billing/plans.ts";
import { createClient } from "../../src/libraries/clients/index.ts";
import { createProvider, getProvider } from "../../src/libraries/federation/providers.ts";
import { setWebhook } from "../../src/libraries/webhooks/index.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, decode, formFor } from "../accounts/helpers.ts";
import { createUser, sessionCookie } from "../oauth/helpers.ts";
import { type ConsoleUser, consoleUser } from "./helpers.ts";

/**
 * The console pages of the other areas (#14 with #11, #12, #15, #16): roles and permissions, a user's roles and
 * entitlements, plans, providers and webhooks. Access on every route for each kind of user, CSRF on every form,
 * hostile input escaped, and each action audited with the admin's id.
 */

let t: AccountsTestApp;
let admin: ConsoleUser;
let support: ConsoleUser;
let clientId: string;
let targetId: string;
let roleId: string;
let globalRoleId: string;
let permissionId: string;
let deadId: string;
const SYSTEM = { actorId: null, meta: { ip: "127.0.0.1", userAgent: "test" } };

beforeAll(async () => {
  t = await buildAccountsApp();
  admin = await consoleUser(t.app, t.clock, { email: "root@tessera.test", level: "admin" });
  support = await consoleUser(t.app, t.clock, { email: "help@tessera.test", level: "support" });
  const { client } = await createClient(t.app.ctx, { name: "Shop", redirectUris: ["https://shop.example/cb"] });
  clientId = client.clientId;
  targetId = (await createUser(t.app, { email: "target@example.com" })).id;
  const actor = { actorId: admin.userId, meta: SYSTEM.meta };
  roleId = (await createRole(t.app.ctx, clientId, { name: "moderator", permissions: ["chat:mute"] }, actor)).id;
  globalRoleId = (await createRole(t.app.ctx, null, { name: "staff" }, actor)).id;
  permissionId = (await createPermission(t.app.ctx, clientId, { name: "chat:ban" }, actor)).id;
  await createPlan(
    t.app.ctx,
    { name: "gold", entitlements: ["gold"], crypto_price: "5.00", crypto_currency: "USD" },
    actor,
  );
  await createProvider(
    t.app.ctx,
    {
      slug: "corp",
      type: "oidc",
      issuer: "https://idp.example",
      clientId: "tessera",
      clientSecret: "upstream-secret-1",
    },
    SYSTEM,
  );
  await setWebhook(t.app.ctx, clientId, { url: "https://shop.example/hooks", events: ["user.updated"] }, actor);
  const [dead] = await t.app.ctx.db
    .insert(webhookDeliveries)
    .values({
      clientId: client.id,
      userId: targetId,
      eventType: "user.updated",
      payload: {},
      attempts: 8,
      lastError: "HTTP 500",
      deadAt: t.clock.now(),
    })
    .returning();
  deadId = dead!.id;
}, 120_000);
afterAll(() => t.close());

async function csrfOf(browser: Browser): Promise<string> {
  const page = await browser.get("/login?prompt=login");
  return formFor(page.body, "/login")._csrf!;
}

type Route = {
  method: "GET" | "POST";
  url: string;
  level: "support" | "admin";
  fields?: Record<string, string>;
  /** What a permitted read answers (200 unless said). */
  read?: number;
};

const routes = (): Route[] => {
  const roles = `/admin/clients/${clientId}/roles`;
  const permissions = `/admin/clients/${clientId}/permissions`;
  const user = `/admin/users/${targetId}`;
  return [
    { method: "GET", url: "/admin/roles", level: "support" },
    { method: "GET", url: roles, level: "support" },
    { method: "GET", url: "/admin/plans", level: "support" },
    { method: "GET", url: "/admin/providers", level: "support" },
    { method: "GET", url: "/admin/providers/corp", level: "support" },
    { method: "GET", url: "/admin/webhooks", level: "support" },
    { method: "GET", url: "/admin/webhooks?state=pending", level: "support" },
    { method: "GET", url: `/admin/clients/${clientId}/webhook`, level: "support" },
    { method: "GET", url: `/admin/clients/${clientId}/try`, level: "support", read: 303 },
    { method: "GET", url: "/admin/try-it/callback?code=x&state=y", level: "support", read: 400 },
    { method: "POST", url: `/admin/clients/${clientId}/try-it/register`, level: "admin" },
    { method: "POST", url: "/admin/roles", level: "admin", fields: { name: "sweep-global" } },
    { method: "POST", url: `/admin/roles/${globalRoleId}`, level: "admin", fields: { description: "d" } },
    { method: "POST", url: "/admin/roles/00000000-0000-4000-8000-000000000000/delete", level: "admin" },
    { method: "POST", url: roles, level: "admin", fields: { name: "sweep", permissions: "x:y" } },
    { method: "POST", url: `${roles}/${roleId}`, level: "admin", fields: { description: "mods" } },
    { method: "POST", url: `${roles}/00000000-0000-4000-8000-000000000000/delete`, level: "admin" },
    { method: "POST", url: permissions, level: "admin", fields: { name: "sweep:perm" } },
    { method: "POST", url: `${permissions}/${permissionId}`, level: "admin", fields: { description: "ban" } },
    { method: "POST", url: `${permissions}/00000000-0000-4000-8000-000000000000/delete`, level: "admin" },
    { method: "POST", url: `${user}/roles`, level: "admin", fields: { role_id: globalRoleId } },
    { method: "POST", url: `${user}/roles/00000000-0000-4000-8000-000000000000/unassign`, level: "admin" },
    { method: "POST", url: `${user}/entitlements`, level: "admin", fields: { name: "sweep" } },
    { method: "POST", url: `${user}/entitlements/revoke`, level: "admin", fields: { name: "nothing" } },
    {
      method: "POST",
      url: "/admin/plans",
      level: "admin",
      fields: { name: "sweep", entitlements: "x", crypto_price: "1", crypto_currency: "USD" },
    },
    { method: "POST", url: "/admin/plans/gold", level: "admin", fields: { entitlements: "gold" } },
    { method: "POST", url: "/admin/plans/no-such-plan/archive", level: "admin" },
    { method: "POST", url: "/admin/providers", level: "admin", fields: { kind: "steam", slug: "sweep" } },
    { method: "POST", url: "/admin/providers/corp", level: "admin", fields: { display_name: "Corp" } },
    { method: "POST", url: "/admin/providers/corp/disable", level: "admin" },
    { method: "POST", url: "/admin/providers/corp/enable", level: "admin" },
    {
      method: "POST",
      url: `/admin/clients/${clientId}/webhook`,
      level: "admin",
      fields: { url: "https://shop.example/hooks", events: "user.updated" },
    },
    { method: "POST", url: `/admin/clients/${clientId}/webhook/rotate-secret`, level: "admin" },
    { method: "POST", url: "/admin/clients/no-such-client/webhook/delete", level: "admin" },
    {
      method: "POST",
      url: "/admin/webhooks/deliveries/00000000-0000-4000-8000-000000000000/redeliver",
      level: "admin",
    },
  ];
};

async function call(browser: Browser, route: Route, csrf?: string) {
  if (route.method === "GET") return browser.get(route.url);
  return browser.post(route.url, { ...(csrf === undefined ? {} : { _csrf: csrf }), ...route.fields });
}

describe("access on every new console route", () => {
  it("anonymous: sent to the hosted sign-in, never a change", async () => {
    const browser = new Browser(t.app);
    const csrf = await csrfOf(browser);
    for (const route of routes()) {
      const response = await call(browser, route, csrf);
      const back = route.method === "GET" ? route.url : "/admin";
      expect([route.url, response.statusCode, response.headers.location]).toEqual([
        route.url,
        303,
        `/login?return_to=${encodeURIComponent(back)}`,
      ]);
    }
  });

  it("an ordinary signed-in user: 403 FORBIDDEN on every route, audited", async () => {
    const user = await createUser(t.app);
    const browser = new Browser(t.app);
    browser.cookies.set("tessera_session", (await sessionCookie(t.app, user)).cookie.split("=")[1]!);
    const csrf = await csrfOf(browser);
    for (const route of routes()) {
      const response = await call(browser, route, csrf);
      expect([route.url, response.statusCode]).toEqual([route.url, 403]);
      expect(response.body).toContain("FORBIDDEN");
    }
    const refused = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.userId, user.id));
    expect(refused.filter((e) => e.event === "admin.authorization_failed")).toHaveLength(routes().length);
  });

  it("every new form refuses a missing or forged CSRF token with 403 CSRF_INVALID", async () => {
    for (const route of routes().filter((r) => r.method === "POST")) {
      for (const token of [undefined, "forged-token"]) {
        const response = await call(admin.browser, route, token);
        expect([route.url, token, response.statusCode]).toEqual([route.url, token, 403]);
        expect(response.body).toContain("CSRF_INVALID");
      }
    }
    expect((await getProvider(t.app.ctx, "corp")).disabledAt).toBeNull();
  });

  it("support reads every page (without change forms); every change is 403", async () => {
    const csrf = await csrfOf(support.browser);
    for (const route of routes()) {
      const response = await call(support.browser, route, csrf);
      if (route.level === "admin") expect([route.url, response.statusCode]).toEqual([route.url, 403]);
      else expect([route.url, response.statusCode]).toEqual([route.url, route.read ?? 200]);
      if (route.method === "GET")
        expect([route.url, response.body.includes('method="post"')]).toEqual([route.url, false]);
    }
    const user = await support.browser.get(`/admin/users/${targetId}`);
    expect(user.body).not.toContain("Assign role");
    expect(user.body).not.toContain("Grant entitlement");
  });

  it("a full admin reaches every route: never a 403 or a 5xx", async () => {
    const csrf = await csrfOf(admin.browser);
    for (const route of routes()) {
      const response = await call(admin.browser, route, csrf);
      expect([route.url, response.statusCode === 403 || response.statusCode >= 500]).toEqual([route.url, false]);
    }
  });
});

/** The audit rows of an event done by the admin. */
async function audited(event: string) {
  const rows = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, event));
  return rows.filter((r) => r.actorId === admin.userId);
}

describe("roles and permissions", () => {
  it("creates, renames and deletes an app's permission and role through the forms, audited with the admin", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Game", redirectUris: ["https://game.example/cb"] });
    const base = `/admin/clients/${client.clientId}`;
    const csrf = await csrfOf(admin.browser);
    const made = await admin.browser.post(`${base}/permissions`, { _csrf: csrf, name: "items:give" });
    expect([made.statusCode, made.headers.location]).toEqual([303, `${base}/roles?notice=permission_created`]);
    const role = await admin.browser.post(`${base}/roles`, {
      _csrf: csrf,
      name: "gm",
      description: "Game master",
      permissions: "items:give chat:mute",
    });
    expect(role.statusCode).toBe(303);
    let page = await admin.browser.get(`${base}/roles`);
    expect(page.body).toContain("Permissions: chat:mute, items:give");
    const id = /action="\/admin\/clients\/[^/]+\/roles\/([0-9a-f-]{36})"/.exec(page.body)?.[1];
    expect(id).toBeDefined();

    const taken = await admin.browser.post(`${base}/roles`, { _csrf: csrf, name: "gm" });
    expect(taken.statusCode).toBe(409);
    expect(taken.body).toContain("This app already has a role with that name.");
    const bad = await admin.browser.post(`${base}/roles`, { _csrf: csrf, name: "has space" });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain("name: must be 1-100 letters");

    expect((await admin.browser.post(`${base}/roles/${id}`, { _csrf: csrf, name: "game-master" })).statusCode).toBe(
      303,
    );
    page = await admin.browser.get(`${base}/roles`);
    expect(page.body).toContain("<code>game-master</code>");
    expect((await admin.browser.post(`${base}/roles/${id}/delete`, { _csrf: csrf })).statusCode).toBe(303);
    page = await admin.browser.get(`${base}/roles`);
    expect(page.body).not.toContain("game-master");
    for (const event of [
      "admin.permission_created",
      "admin.role_created",
      "admin.role_updated",
      "admin.role_deleted",
    ]) {
      expect([event, (await audited(event)).length > 0]).toEqual([event, true]);
    }
  });

  it("a role of one app cannot be changed through another app's page", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Other", redirectUris: ["https://other.example/cb"] });
    const csrf = await csrfOf(admin.browser);
    const response = await admin.browser.post(`/admin/clients/${client.clientId}/roles/${roleId}/delete`, {
      _csrf: csrf,
    });
    expect(response.statusCode).toBe(404);
    expect(response.body).toContain("No role with that id in this app.");
    expect((await admin.browser.get(`/admin/clients/${clientId}/roles`)).body).toContain("<code>moderator</code>");
  });

  it("assigns a role with an expiry and takes it away; grants and revokes an entitlement on the user page", async () => {
    const user = await createUser(t.app, { email: "player@example.com" });
    const base = `/admin/users/${user.id}`;
    const csrf = await csrfOf(admin.browser);
    const past = await admin.browser.post(`${base}/roles`, {
      _csrf: csrf,
      role_id: roleId,
      expires_at: "2000-01-01T00:00",
    });
    expect(past.statusCode).toBe(400);
    expect(past.body).toContain("must be in the future");
    const assigned = await admin.browser.post(`${base}/roles`, {
      _csrf: csrf,
      role_id: roleId,
      expires_at: "2099-06-01T12:30",
    });
    expect([assigned.statusCode, assigned.headers.location]).toEqual([303, `${base}?notice=role_assigned`]);
    const [role] = await listUserRoles(t.app.ctx, user.id, { limit: 10 });
    expect(role?.expires_at).toBe("2099-06-01T12:30:00.000Z");
    const granted = await admin.browser.post(`${base}/entitlements`, {
      _csrf: csrf,
      name: "season-pass",
      client_ids: clientId,
    });
    expect(granted.statusCode).toBe(303);
    let page = await admin.browser.get(base);
    expect(page.body).toContain("<code>moderator</code> · in Shop · until");
    expect(page.body).toContain("<code>season-pass</code> · granted by an admin · in Shop");

    expect((await admin.browser.post(`${base}/roles/${roleId}/unassign`, { _csrf: csrf })).statusCode).toBe(303);
    expect(
      (await admin.browser.post(`${base}/entitlements/revoke`, { _csrf: csrf, name: "season-pass" })).statusCode,
    ).toBe(303);
    page = await admin.browser.get(base);
    expect(page.body).toContain("No roles.");
    expect(page.body).toContain("No entitlements.");
    const again = await admin.browser.post(`${base}/entitlements/revoke`, { _csrf: csrf, name: "season-pass" });
    expect(again.statusCode).toBe(404);
    for (const event of [
      "admin.role_assigned",
      "admin.role_unassigned",
      "admin.entitlement_granted",
      "admin.entitlement_revoked",
    ]) {
      const rows = (await audited(event)).filter((r) => r.userId === user.id);
      expect([event, rows.length]).toEqual([event, 1]);
    }
  });
});

describe("plans", () => {
  it("creates, edits and archives a plan; errors are shown on the page", async () => {
    const csrf = await csrfOf(admin.browser);
    const bad = await admin.browser.post("/admin/plans", { _csrf: csrf, name: "silver", entitlements: "silver" });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain("give a Stripe price, a crypto price, or both");
    expect(bad.body).toContain('value="silver"');
    const made = await admin.browser.post("/admin/plans", {
      _csrf: csrf,
      name: "silver",
      entitlements: "silver perks",
      crypto_price: "2.50",
      crypto_currency: "USD",
      duration_days: "30",
    });
    expect([made.statusCode, made.headers.location]).toEqual([303, "/admin/plans?notice=plan_created"]);
    const edited = await admin.browser.post("/admin/plans/silver", {
      _csrf: csrf,
      description: "Silver tier",
      entitlements: "silver",
      clients: clientId,
    });
    expect(edited.statusCode).toBe(303);
    const plan = await getPlan(t.app.ctx, "silver");
    expect([plan.description, plan.entitlements, plan.durationDays]).toEqual(["Silver tier", ["silver"], 30]);
    expect((await admin.browser.post("/admin/plans/silver/archive", { _csrf: csrf })).statusCode).toBe(303);
    const twice = await admin.browser.post("/admin/plans/silver/archive", { _csrf: csrf });
    expect(twice.statusCode).toBe(409);
    const page = await admin.browser.get("/admin/plans");
    expect(page.body).toMatch(/<code>silver<\/code> <span class="tag">archived<\/span>/);
    for (const event of ["billing.plan_created", "billing.plan_updated", "billing.plan_archived"]) {
      const rows = (await audited(event)).filter((r) => (r.details as { plan?: string }).plan === "silver");
      expect([event, rows.length]).toEqual([event, 1]);
    }
  });
});

describe("providers", () => {
  it("creates from a preset with a write-only secret, edits, keeps or replaces the secret, disables", async () => {
    const csrf = await csrfOf(admin.browser);
    const secret = "gh-secret-value-123456";
    const made = await admin.browser.post("/admin/providers", {
      _csrf: csrf,
      kind: "github",
      slug: "github",
      client_id: "Iv1.abc",
      client_secret: secret,
      trusted_for_email: "on",
    });
    expect([made.statusCode, made.headers.location]).toEqual([303, "/admin/providers/github?notice=provider_created"]);
    let page = await admin.browser.get("/admin/providers/github");
    expect(page.body).toContain("set (never shown)");
    expect(page.body).toContain(
      "http://localhost:3000/federation/github/callback".replace("http://localhost:3000", t.app.ctx.config.issuer),
    );
    expect(page.body).not.toContain(secret);
    const row = await getProvider(t.app.ctx, "github");
    expect(row.trustedForEmail).toBe(true);

    const kept = await admin.browser.post("/admin/providers/github", {
      _csrf: csrf,
      display_name: "GitHub (work)",
      client_id: "Iv1.abc",
      client_secret: "",
      scopes: "read:user user:email",
    });
    expect(kept.statusCode).toBe(303);
    const afterKeep = await getProvider(t.app.ctx, "github");
    expect(afterKeep.clientSecretEncrypted).toBe(row.clientSecretEncrypted);
    expect([afterKeep.displayName, afterKeep.trustedForEmail, afterKeep.scopes]).toEqual([
      "GitHub (work)",
      false,
      ["read:user", "user:email"],
    ]);
    await admin.browser.post("/admin/providers/github", {
      _csrf: csrf,
      display_name: "GitHub",
      client_id: "Iv1.abc",
      client_secret: "a-new-secret",
    });
    expect((await getProvider(t.app.ctx, "github")).clientSecretEncrypted).not.toBe(row.clientSecretEncrypted);

    const oidcWithoutIssuer = await admin.browser.post("/admin/providers", {
      _csrf: csrf,
      kind: "oidc",
      slug: "google",
      client_id: "x",
      client_secret: "must-not-come-back",
    });
    expect(oidcWithoutIssuer.statusCode).toBe(400);
    expect(oidcWithoutIssuer.body).toContain("an OpenID provider needs its issuer URL");
    expect(oidcWithoutIssuer.body).not.toContain("must-not-come-back");

    expect((await admin.browser.post("/admin/providers/github/disable", { _csrf: csrf })).statusCode).toBe(303);
    page = await admin.browser.get("/admin/providers");
    expect(page.body).toMatch(/<code>github<\/code><\/td>\s*<td>github<\/td>\s*<td>disabled<\/td>/);
    const events = await t.app.ctx.db.select().from(auditEvents);
    const slugOf = (d: unknown) => (d as { after?: { slug?: string } }).after?.slug;
    const mine = events.filter(
      (e) => e.actorId === admin.userId && e.event.startsWith("admin.provider_") && slugOf(e.details) === "github",
    );
    expect(mine.map((e) => e.event).sort()).toEqual(
      ["admin.provider_created", "admin.provider_disabled", "admin.provider_updated", "admin.provider_updated"].sort(),
    );
    expect(JSON.stringify(mine)).not.toContain(secret);
    expect(JSON.stringify(mine)).not.toContain("a-new-secret");
  });
});

describe("webhooks", () => {
  it("creating shows the signing secret once; rotating asks for a fresh proof; a dead letter goes back to the queue", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Hooked", redirectUris: ["https://hooked.example/cb"] });
    const base = `/admin/clients/${client.clientId}/webhook`;
    const csrf = await csrfOf(admin.browser);
    const empty = await admin.browser.get(base);
    expect(empty.body).toContain("This client has no webhook.");
    const created = await admin.browser.post(base, {
      _csrf: csrf,
      url: "https://hooked.example/hooks",
      events: "roles.changed",
    });
    expect(created.statusCode).toBe(200);
    const secret = decode(/id="webhook-secret" class="secret" readonly value="([^"]+)"/.exec(created.body)?.[1] ?? "");
    expect(secret.length).toBeGreaterThan(20);
    const page = await admin.browser.get(base);
    expect(page.body).toContain("<code>https://hooked.example/hooks</code>");
    expect(page.body).not.toContain(secret);

    const noProof = await admin.browser.post(`${base}/rotate-secret`, { _csrf: csrf });
    expect(noProof.statusCode).toBe(401);
    expect(noProof.body).not.toContain('id="webhook-secret"');
    const rotated = await admin.browser.post(`${base}/rotate-secret`, { _csrf: csrf, confirm_code: admin.nextCode() });
    expect(rotated.statusCode).toBe(200);
    const second = decode(/id="webhook-secret" class="secret" readonly value="([^"]+)"/.exec(rotated.body)?.[1] ?? "");
    expect(second).not.toBe(secret);
    expect(second.length).toBeGreaterThan(20);

    const http = await admin.browser.post(base, {
      _csrf: csrf,
      url: "http://hooked.example/x",
      events: "user.updated",
    });
    expect(http.statusCode).toBe(400);

    const dead = await admin.browser.get("/admin/webhooks");
    expect(dead.body).toContain(`/admin/webhooks/deliveries/${deadId}/redeliver`);
    const again = await admin.browser.post(`/admin/webhooks/deliveries/${deadId}/redeliver`, {
      _csrf: csrf,
      client_id: clientId,
    });
    expect([again.statusCode, again.headers.location]).toEqual([
      303,
      `/admin/clients/${clientId}/webhook?notice=webhook_redelivered`,
    ]);
    const [row] = await t.app.ctx.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, deadId));
    expect(row?.deadAt).toBeNull();
    const twice = await admin.browser.post(`/admin/webhooks/deliveries/${deadId}/redeliver`, { _csrf: csrf });
    expect(twice.statusCode).toBe(409);
    expect((await admin.browser.post(`${base}/delete`, { _csrf: csrf })).statusCode).toBe(303);
    for (const event of [
      "admin.client_webhook_set",
      "admin.client_webhook_secret_rotated",
      "admin.webhook_redelivered",
      "admin.client_webhook_removed",
    ]) {
      expect([event, (await audited(event)).length > 0]).toEqual([event, true]);
    }
  });
});

describe("hostile input is escaped on the new pages", () => {
  it("role and permission descriptions, plan descriptions, provider names and webhook URLs", async () => {
    const evil = '"><script>alert(1)</script>';
    const actor = { actorId: admin.userId, meta: SYSTEM.meta };
    await createRole(t.app.ctx, clientId, { name: "evil", description: evil }, actor);
    await createPermission(t.app.ctx, clientId, { name: "evil:perm", description: evil }, actor);
    await createPlan(
      t.app.ctx,
      { name: "evil", description: evil, entitlements: ["evil"], crypto_price: "1", crypto_currency: "USD" },
      actor,
    );
    await createProvider(t.app.ctx, { slug: "evil", type: "steam", displayName: evil.slice(0, 60) }, SYSTEM);
    const { client } = await createClient(t.app.ctx, { name: evil, redirectUris: ["https://evil.example/cb"] });
    await setWebhook(
      t.app.ctx,
      client.clientId,
      {
        url: `https://evil.example/h?x=${encodeURIComponent(evil)}&y="><img src=x onerror=alert(2)>`,
        events: ["user.updated"],
      },
      actor,
    ).catch(() =>
      setWebhook(t.app.ctx, client.clientId, { url: "https://evil.example/h", events: ["user.updated"] }, actor),
    );
    const user = await createUser(t.app, { email: "evil-grants@example.com" });
    await admin.browser.post(`/admin/users/${user.id}/roles`, { _csrf: await csrfOf(admin.browser), role_id: roleId });
    for (const url of [
      `/admin/clients/${clientId}/roles`,
      "/admin/roles",
      "/admin/plans",
      "/admin/providers",
      "/admin/providers/evil",
      "/admin/webhooks",
      `/admin/clients/${client.clientId}/webhook`,
      `/admin/users/${user.id}`,
    ]) {
      const page = await admin.browser.get(url);
      expect([url, page.statusCode]).toEqual([url, 200]);
      expect([url, page.body.includes("<script>alert")]).toEqual([url, false]);
      expect([url, page.body.includes("<img src=x")]).toEqual([url, false]);
    }
    const [provider] = await t.app.ctx.db.select().from(identityProviders).where(eq(identityProviders.slug, "evil"));
    expect(provider?.displayName).toContain("<script>");
  });
});

describe("try it: a real sign-in for the client that lands back in the console", () => {
  it("registers the console callback, runs /authorize (consent included) and shows success; a foreign state is refused", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Tryout", redirectUris: ["https://tryout.example/cb"] });
    const base = `/admin/clients/${client.clientId}`;
    const callback = `${t.app.ctx.config.issuer.replace(/\/$/, "")}/admin/try-it/callback`;
    let page = await admin.browser.get(base);
    expect(page.body).toContain(`add <code>${callback}</code> to the redirect URIs`);
    const early = await admin.browser.get(`${base}/try`);
    expect(early.headers.location).toBe(`${base}?notice=try_it_needs_uri`);
    const csrf = await csrfOf(admin.browser);
    expect((await admin.browser.post(`${base}/try-it/register`, { _csrf: csrf })).statusCode).toBe(303);
    page = await admin.browser.get(base);
    expect(page.body).toContain(`href="${base}/try"`);

    const start = await admin.browser.get(`${base}/try`);
    expect(start.statusCode).toBe(303);
    const authorize = new URL(start.headers.location as string, "http://x");
    expect([authorize.pathname, authorize.searchParams.get("redirect_uri")]).toEqual(["/authorize", callback]);
    let step = await admin.browser.get(`${authorize.pathname}${authorize.search}`);
    for (let hops = 0; hops < 5 && !String(step.headers.location ?? "").startsWith(callback); hops++) {
      if (step.statusCode === 200 && step.body.includes('action="/authorize/consent"')) {
        const fields = formFor(step.body, "/authorize/consent");
        step = await admin.browser.post("/authorize/consent", { ...fields, decision: "approve" });
      } else if (step.headers.location) {
        step = await admin.browser.get(String(step.headers.location));
      } else break;
    }
    const landing = String(step.headers.location ?? "");
    expect(landing.startsWith(`${callback}?code=`)).toBe(true);
    const done = await admin.browser.get(landing.replace(/^https?:\/\/[^/]+/, ""));
    expect(done.statusCode).toBe(200);
    expect(done.body).toContain("Sign-in worked");
    expect(done.body).toContain("Tessera signed <strong>root@tessera.test</strong> in to <strong>Tryout</strong>");

    const replay = await admin.browser.get(landing.replace(/^https?:\/\/[^/]+/, ""));
    expect(replay.statusCode).toBe(400);
    expect(replay.body).toContain("does not belong to a sign-in started from this console");
  });
});

describe("admin API keys name their owner", () => {
  it("the create form takes an owner admin's email; the list shows each key's owner; a non-admin owner is refused", async () => {
    const csrf = await csrfOf(admin.browser);
    const page = await admin.browser.get("/admin/security");
    expect(page.body).toContain('<label for="api-key-owner">Owner (an admin&#39;s email)</label>');
    const made = await admin.browser.post("/admin/security/api-keys", {
      _csrf: csrf,
      name: "support-bot",
      owner_email: "help@tessera.test",
    });
    expect(made.statusCode).toBe(200);
    expect(made.body).toContain("<strong>support-bot</strong> · owner help@tessera.test");
    const refused = await admin.browser.post("/admin/security/api-keys", {
      _csrf: csrf,
      name: "nobody",
      owner_email: "target@example.com",
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("is not an active admin");
    expect(refused.body).toContain('value="target@example.com"');
  });
});
