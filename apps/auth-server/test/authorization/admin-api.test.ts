import { auditEvents, roles, userRoles } from "@tessera/db";
import { desc, eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAdmin } from "../admin/helpers.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, registerClient, type TestClient } from "../oauth/helpers.ts";

/** The admin API of #11: exact wire answers, audit rows with before/after, and hostile input answered 4xx. */
let t: TestApp;
let app: FastifyInstance;
let auth: string;
let adminId: string;
let game: TestClient;
let shop: TestClient;
let userId: string;

const api = (method: "GET" | "POST" | "PATCH" | "DELETE" | "PUT", url: string, payload?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: auth, ...(payload !== undefined ? { "content-type": "application/json" } : {}) },
    ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
  });

const lastAudit = async (event: string) => {
  const [row] = await app.ctx.db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.event, event))
    .orderBy(desc(auditEvents.at))
    .limit(1);
  return row;
};

beforeAll(async () => {
  t = await buildOAuthApp();
  app = t.app;
  ({ authorization: auth, userId: adminId } = await seedAdmin(app));
  game = await registerClient(app, { name: "Game" });
  shop = await registerClient(app, { name: "Shop" });
  userId = (await createUser(app)).id;
});
afterAll(async () => t.close());

describe("roles and permissions of an app", () => {
  let roleId: string;

  it("creates a role with permissions created as needed, audited with before and after", async () => {
    const res = await api("POST", `/admin/api/v1/clients/${game.clientId}/roles`, {
      name: "moderator",
      description: "Keeps chat civil",
      permissions: ["chat:mute", "chat:kick", "chat:mute"],
    });
    expect(res.statusCode).toBe(201);
    const role = res.json();
    roleId = role.id;
    expect(role).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      client_id: game.clientId,
      name: "moderator",
      description: "Keeps chat civil",
      permissions: ["chat:kick", "chat:mute"],
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    const audit = await lastAudit("admin.role_created");
    expect(audit).toMatchObject({ actorId: adminId, clientId: game.clientId, outcome: "success" });
    expect(audit?.details).toMatchObject({ via: "api-key", before: null, after: { name: "moderator" } });
    const list = await api("GET", `/admin/api/v1/clients/${game.clientId}/permissions`);
    expect(list.json().permissions.map((p: { name: string }) => p.name)).toEqual(["chat:kick", "chat:mute"]);
  });

  it("renames and sets permissions; the id stays; the audit has before and after", async () => {
    const res = await api("PATCH", `/admin/api/v1/clients/${game.clientId}/roles/${roleId}`, {
      name: "chat-moderator",
      permissions: ["chat:mute"],
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: roleId, name: "chat-moderator", permissions: ["chat:mute"] });
    const audit = await lastAudit("admin.role_updated");
    expect(audit?.details).toMatchObject({
      before: { name: "moderator", permissions: ["chat:kick", "chat:mute"] },
      after: { name: "chat-moderator", permissions: ["chat:mute"] },
    });
  });

  it("pages lists by name", async () => {
    for (const name of ["a-role", "b-role", "c-role"]) {
      expect((await api("POST", `/admin/api/v1/clients/${game.clientId}/roles`, { name })).statusCode).toBe(201);
    }
    const first = await api("GET", `/admin/api/v1/clients/${game.clientId}/roles?limit=2`);
    expect(first.json().roles.map((r: { name: string }) => r.name)).toEqual(["a-role", "b-role"]);
    expect(first.json().next_after).toBe("b-role");
    const second = await api("GET", `/admin/api/v1/clients/${game.clientId}/roles?limit=2&after=b-role`);
    expect(second.json().roles.map((r: { name: string }) => r.name)).toEqual(["c-role", "chat-moderator"]);
    expect(second.json().next_after).toBeNull();
    // The shop's list does not show the game's roles.
    expect((await api("GET", `/admin/api/v1/clients/${shop.clientId}/roles`)).json()).toEqual({
      roles: [],
      next_after: null,
    });
  });

  it("deletes a permission from every role that had it", async () => {
    const list = await api("GET", `/admin/api/v1/clients/${game.clientId}/permissions`);
    const mute = list.json().permissions.find((p: { name: string }) => p.name === "chat:mute");
    const res = await api("DELETE", `/admin/api/v1/clients/${game.clientId}/permissions/${mute.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ permission: { name: "chat:mute" }, removed_from_roles: ["chat-moderator"] });
    const roleList = await api("GET", `/admin/api/v1/clients/${game.clientId}/roles?after=c-role`);
    expect(roleList.json().roles[0]).toMatchObject({ name: "chat-moderator", permissions: [] });
  });

  it("deletes a role and its assignments", async () => {
    const role = (await api("POST", `/admin/api/v1/clients/${game.clientId}/roles`, { name: "temp" })).json();
    expect((await api("POST", `/admin/api/v1/users/${userId}/roles`, { role_id: role.id })).statusCode).toBe(201);
    const res = await api("DELETE", `/admin/api/v1/clients/${game.clientId}/roles/${role.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ role: { id: role.id, name: "temp" }, assignments_removed: 1 });
    expect(await app.ctx.db.select().from(userRoles).where(eq(userRoles.roleId, role.id))).toEqual([]);
  });

  it("manages global roles, which hold no permissions", async () => {
    const res = await api("POST", "/admin/api/v1/roles", { name: "staff" });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ client_id: null, name: "staff", permissions: [] });
    const withPermissions = await api("POST", "/admin/api/v1/roles", { name: "x", permissions: ["a:b"] });
    expect(withPermissions.statusCode).toBe(400);
    expect(withPermissions.json().error.code).toBe("VALIDATION_FAILED");
    expect((await api("GET", "/admin/api/v1/roles")).json().roles.map((r: { name: string }) => r.name)).toEqual([
      "staff",
    ]);
  });
});

describe("user roles and entitlements", () => {
  it("assigns with an expiry, re-assigns replacing it, lists, and unassigns (audited)", async () => {
    const role = (await api("POST", `/admin/api/v1/clients/${game.clientId}/roles`, { name: "vip" })).json();
    const later = new Date(t.clock.now().getTime() + 3_600_000).toISOString();
    const first = await api("POST", `/admin/api/v1/users/${userId}/roles`, { role_id: role.id, expires_at: later });
    expect(first.statusCode).toBe(201);
    expect(first.json()).toEqual({
      role_id: role.id,
      role: "vip",
      client_id: game.clientId,
      client_name: "Game",
      expires_at: later,
      active: true,
    });
    const again = await api("POST", `/admin/api/v1/users/${userId}/roles`, { role_id: role.id, expires_at: null });
    expect(again.json().expires_at).toBeNull();
    const audit = await lastAudit("admin.role_assigned");
    expect(audit).toMatchObject({ actorId: adminId, userId });
    expect(audit?.details).toMatchObject({
      before: { role_id: role.id, expires_at: later },
      after: { role_id: role.id, expires_at: null },
    });
    const list = await api("GET", `/admin/api/v1/users/${userId}/roles`);
    expect(list.json().roles.map((r: { role: string }) => r.role)).toContain("vip");
    const removed = await api("DELETE", `/admin/api/v1/users/${userId}/roles/${role.id}`);
    expect(removed.statusCode).toBe(200);
    expect(removed.json()).toEqual({ role_id: role.id, removed: true });
    const gone = await api("DELETE", `/admin/api/v1/users/${userId}/roles/${role.id}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe("ROLE_NOT_ASSIGNED");
    expect((await lastAudit("admin.role_unassigned"))?.details).toMatchObject({
      before: { role_id: role.id, expires_at: null },
      after: null,
    });
  });

  it("grants an entitlement limited to apps, re-grants, lists, revokes the admin grant", async () => {
    const res = await api("POST", `/admin/api/v1/users/${userId}/entitlements`, {
      name: "premium",
      client_ids: [shop.clientId],
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      name: "premium",
      client_ids: [shop.clientId],
      client_names: ["Shop"],
      source: "admin",
      source_ref: "",
      expires_at: null,
      active: true,
    });
    const again = await api("POST", `/admin/api/v1/users/${userId}/entitlements`, { name: "premium" });
    expect(again.json().client_ids).toBeNull();
    expect((await lastAudit("admin.entitlement_granted"))?.details).toMatchObject({
      name: "premium",
      before: { client_ids: [shop.clientId], expires_at: null },
      after: { client_ids: null, expires_at: null },
    });
    const list = await api("GET", `/admin/api/v1/users/${userId}/entitlements`);
    expect(list.json().entitlements).toHaveLength(1);
    const revoked = await api("DELETE", `/admin/api/v1/users/${userId}/entitlements/premium`);
    expect(revoked.json()).toEqual({ name: "premium", removed: true });
    const again404 = await api("DELETE", `/admin/api/v1/users/${userId}/entitlements/premium`);
    expect(again404.statusCode).toBe(404);
    expect(again404.json().error.code).toBe("ENTITLEMENT_NOT_GRANTED");
  });
});

describe("hostile input: a 4xx with a code, never a 500, nothing half-written", () => {
  const expectError = async (
    res: Awaited<ReturnType<typeof api>>,
    status: number,
    code: string,
    field?: string,
  ): Promise<void> => {
    expect({ status: res.statusCode, code: res.json().error?.code }).toEqual({ status, code });
    if (field) expect(res.json().error.fields.map((f: { field: string }) => f.field)).toContain(field);
  };

  it("refuses duplicate names, including on rename", async () => {
    await expectError(
      await api("POST", `/admin/api/v1/clients/${game.clientId}/roles`, { name: "vip" }),
      409,
      "ROLE_NAME_TAKEN",
    );
    const other = (await api("POST", `/admin/api/v1/clients/${game.clientId}/roles`, { name: "other" })).json();
    await expectError(
      await api("PATCH", `/admin/api/v1/clients/${game.clientId}/roles/${other.id}`, { name: "vip" }),
      409,
      "ROLE_NAME_TAKEN",
    );
    // The same name in another app is fine.
    expect((await api("POST", `/admin/api/v1/clients/${shop.clientId}/roles`, { name: "vip" })).statusCode).toBe(201);
    await api("POST", `/admin/api/v1/clients/${game.clientId}/permissions`, { name: "p:one" });
    await expectError(
      await api("POST", `/admin/api/v1/clients/${game.clientId}/permissions`, { name: "p:one" }),
      409,
      "PERMISSION_NAME_TAKEN",
    );
  });

  it("refuses unknown ids and another app's ids", async () => {
    const gameRole = (await api("GET", `/admin/api/v1/clients/${game.clientId}/roles?limit=1`)).json().roles[0];
    await expectError(
      await api("PATCH", `/admin/api/v1/clients/${shop.clientId}/roles/${gameRole.id}`, { name: "stolen" }),
      404,
      "ROLE_NOT_FOUND",
    );
    await expectError(
      await api("DELETE", `/admin/api/v1/clients/${shop.clientId}/roles/${gameRole.id}`),
      404,
      "ROLE_NOT_FOUND",
    );
    await expectError(await api("DELETE", `/admin/api/v1/roles/${gameRole.id}`), 404, "ROLE_NOT_FOUND");
    const [still] = await app.ctx.db.select().from(roles).where(eq(roles.id, gameRole.id));
    expect(still?.name).toBe(gameRole.name);
    const perm = (await api("GET", `/admin/api/v1/clients/${game.clientId}/permissions`)).json().permissions[0];
    await expectError(
      await api("DELETE", `/admin/api/v1/clients/${shop.clientId}/permissions/${perm.id}`),
      404,
      "PERMISSION_NOT_FOUND",
    );
    await expectError(await api("GET", "/admin/api/v1/clients/nope/roles"), 404, "CLIENT_NOT_FOUND");
    await expectError(await api("GET", "/admin/api/v1/clients/%27%3B--/roles"), 404, "CLIENT_NOT_FOUND");
    await expectError(
      await api("POST", `/admin/api/v1/users/${userId}/roles`, { role_id: "00000000-0000-4000-8000-000000000000" }),
      404,
      "ROLE_NOT_FOUND",
    );
    await expectError(
      await api("POST", `/admin/api/v1/users/${userId}/roles`, { role_id: "not-a-uuid" }),
      404,
      "ROLE_NOT_FOUND",
    );
    await expectError(
      await api("POST", "/admin/api/v1/users/00000000-0000-4000-8000-000000000000/roles", { role_id: gameRole.id }),
      404,
      "USER_NOT_FOUND",
    );
    await expectError(await api("GET", "/admin/api/v1/users/x/roles"), 404, "USER_NOT_FOUND");
    await expectError(
      await api("POST", `/admin/api/v1/users/${userId}/entitlements`, { name: "premium", client_ids: ["nope"] }),
      404,
      "CLIENT_NOT_FOUND",
    );
    await expectError(
      await api("DELETE", `/admin/api/v1/users/${userId}/roles/00000000-0000-4000-8000-000000000000`),
      404,
      "ROLE_NOT_FOUND",
    );
  });

  it("refuses bad names, huge lists, wrong types, unknown fields, past expiries and bad cursors", async () => {
    const base = `/admin/api/v1/clients/${game.clientId}/roles`;
    await expectError(await api("POST", base, { name: "" }), 400, "VALIDATION_FAILED", "name");
    await expectError(await api("POST", base, { name: "has space" }), 400, "VALIDATION_FAILED", "name");
    await expectError(await api("POST", base, { name: "x".repeat(101) }), 400, "VALIDATION_FAILED", "name");
    await expectError(await api("POST", base, { name: 42 }), 400, "VALIDATION_FAILED", "name");
    await expectError(await api("POST", base, { name: "ok", admin: true }), 400, "VALIDATION_FAILED");
    await expectError(await api("POST", base, ["name"]), 400, "VALIDATION_FAILED");
    const huge = Array.from({ length: 101 }, (_, i) => `p:${i}`);
    await expectError(await api("POST", base, { name: "big", permissions: huge }), 400, "VALIDATION_FAILED");
    await expectError(
      await api("POST", base, { name: "bad", permissions: ["ok", "no good"] }),
      400,
      "VALIDATION_FAILED",
    );
    const role = (await api("GET", `${base}?limit=1`)).json().roles[0];
    await expectError(
      await api("POST", `/admin/api/v1/users/${userId}/roles`, { role_id: role.id, expires_at: "tomorrow" }),
      400,
      "VALIDATION_FAILED",
      "expires_at",
    );
    await expectError(
      await api("POST", `/admin/api/v1/users/${userId}/roles`, {
        role_id: role.id,
        expires_at: "2001-01-01T00:00:00Z",
      }),
      400,
      "VALIDATION_FAILED",
      "expires_at",
    );
    await expectError(
      await api("POST", `/admin/api/v1/users/${userId}/roles`, { roleId: role.id }),
      400,
      "VALIDATION_FAILED",
    );
    const manyApps = Array.from({ length: 51 }, (_, i) => `app${i}`);
    await expectError(
      await api("POST", `/admin/api/v1/users/${userId}/entitlements`, { name: "e", client_ids: manyApps }),
      400,
      "VALIDATION_FAILED",
      "client_ids",
    );
    await expectError(
      await api("POST", `/admin/api/v1/users/${userId}/entitlements`, { name: "e", client_ids: [] }),
      400,
      "VALIDATION_FAILED",
      "client_ids",
    );
    await expectError(await api("GET", `${base}?limit=0`), 400, "VALIDATION_FAILED");
    await expectError(await api("GET", `${base}?after=%00`), 400, "VALIDATION_FAILED");
    await expectError(await api("PATCH", `${base}/${role.id}`, {}), 400, "VALIDATION_FAILED");
    // Nothing of the refused requests was written.
    expect((await api("GET", `${base}?after=bad`)).json().roles.map((r: { name: string }) => r.name)).not.toContain(
      "big",
    );
    expect((await api("GET", `/admin/api/v1/users/${userId}/entitlements`)).json().entitlements).toEqual([]);
  });

  it("answers 405 with Allow, 401 without a key, 415 for a form body", async () => {
    const wrong = await api("PUT", `/admin/api/v1/users/${userId}/roles`, {});
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toBe("GET, POST");
    const anonymous = await app.inject({ method: "GET", url: "/admin/api/v1/roles" });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().error.code).toBe("UNAUTHENTICATED");
    const formBody = await app.inject({
      method: "POST",
      url: "/admin/api/v1/roles",
      headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" },
      payload: "name=x",
    });
    expect(formBody.statusCode).toBe(415);
  });
});
