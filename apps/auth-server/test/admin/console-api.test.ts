import { apiKeys, auditEvents, users } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../src/libraries/admin.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, sessionCookie as oauthSession, registerClient } from "../oauth/helpers.ts";
import { seedAdmin, sessionCookie } from "./helpers.ts";

let t: TestApp;
let admin: { userId: string; authorization: string };
let support: { userId: string; authorization: string };
let userCookie: string;
let target: { id: string };

/** Makes `email` a support-level admin with its own API key. */
async function seedSupport(email: string) {
  const { userId } = await seedAdmin(t.app, email);
  await t.app.ctx.db.update(users).set({ adminRole: "support" }).where(eq(users.id, userId));
  const { key } = await createApiKey(t.app.ctx, { name: "support", email });
  return { userId, authorization: `Bearer ${key}` };
}

beforeAll(async () => {
  t = await buildOAuthApp();
  admin = await seedAdmin(t.app);
  support = await seedSupport("support@tessera.test");
  const ordinary = await createUser(t.app, { email: "plain@example.com" });
  userCookie = await sessionCookie(t.app, ordinary.id);
  target = await createUser(t.app, { email: "target@example.com" });
});
afterAll(() => t.close());

type Call = { method: "GET" | "POST" | "PUT" | "DELETE"; url: string; body?: object; level: "support" | "admin" };

/** Every admin API route of #14, with the level it needs. Bodies are valid so a pass reaches the handler. */
const calls = (): Call[] => [
  { method: "GET", url: "/admin/api/v1/audit-events", level: "support" },
  { method: "GET", url: "/admin/api/v1/audit-events/export?format=csv", level: "support" },
  { method: "GET", url: "/admin/api/v1/api-keys", level: "support" },
  { method: "POST", url: "/admin/api/v1/api-keys", body: { name: "x" }, level: "admin" },
  { method: "POST", url: "/admin/api/v1/api-keys/00000000-0000-4000-8000-000000000000/revoke", level: "admin" },
  { method: "GET", url: "/admin/api/v1/signing-keys", level: "support" },
  { method: "POST", url: "/admin/api/v1/signing-keys/rotate", level: "admin" },
  { method: "GET", url: "/admin/api/v1/account-locks", level: "support" },
  { method: "DELETE", url: `/admin/api/v1/account-locks/${"a".repeat(64)}`, level: "support" },
  { method: "GET", url: "/admin/api/v1/users?q=example", level: "support" },
  { method: "GET", url: `/admin/api/v1/users/${target.id}`, level: "support" },
  { method: "POST", url: `/admin/api/v1/users/${target.id}/sessions/end`, level: "support" },
  { method: "POST", url: `/admin/api/v1/users/${target.id}/two-step/reset`, level: "admin" },
  { method: "POST", url: `/admin/api/v1/users/${target.id}/password-reset`, level: "admin" },
  { method: "PUT", url: `/admin/api/v1/users/${target.id}/admin-level`, body: { level: "none" }, level: "admin" },
  { method: "POST", url: `/admin/api/v1/users/${target.id}/disable`, level: "admin" },
  { method: "POST", url: `/admin/api/v1/clients`, body: { name: "x", redirect_uris: [] }, level: "admin" },
  { method: "GET", url: "/admin/api/v1/clients", level: "support" },
  { method: "GET", url: "/admin/api/v1/ip-suspensions", level: "support" },
  { method: "DELETE", url: "/admin/api/v1/ip-suspensions/192.0.2.1", level: "support" },
];

const inject = (call: Call, headers: Record<string, string>) =>
  t.app.inject({
    method: call.method,
    url: call.url,
    headers: { ...headers, ...(call.body ? { "content-type": "application/json" } : {}) },
    ...(call.body ? { payload: JSON.stringify(call.body) } : {}),
  });

describe("authorization on every admin API route of the console", () => {
  it("anonymous callers get 401 UNAUTHENTICATED with a Bearer challenge", async () => {
    for (const call of calls()) {
      const response = await inject(call, {});
      expect([call.url, response.statusCode, response.json().error.code]).toEqual([call.url, 401, "UNAUTHENTICATED"]);
      expect(response.headers["www-authenticate"]).toBe('Bearer realm="tessera-admin"');
    }
  });

  it("an ordinary user's session gets 403 FORBIDDEN", async () => {
    for (const call of calls()) {
      const response = await inject(call, { cookie: userCookie, origin: "http://localhost:3000" });
      expect([call.url, response.statusCode, response.json().error.code]).toEqual([call.url, 403, "FORBIDDEN"]);
    }
  });

  it("a support admin may read, end sessions and lift suspensions, and nothing else (403, audited)", async () => {
    for (const call of calls()) {
      const response = await inject(call, { authorization: support.authorization });
      if (call.level === "admin") {
        expect([call.url, response.statusCode, response.json().error.code]).toEqual([call.url, 403, "FORBIDDEN"]);
      } else {
        expect([call.url, response.statusCode]).not.toEqual([call.url, 403]);
        expect([call.url, response.statusCode]).not.toEqual([call.url, 401]);
      }
    }
    const refused = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.event, "admin.authorization_failed"));
    expect(refused.some((r) => r.userId === support.userId && r.details?.need === "admin")).toBe(true);
  });

  it("a full admin passes authorization everywhere", async () => {
    for (const call of calls()) {
      const response = await inject(call, { authorization: admin.authorization });
      expect([call.url, response.statusCode]).not.toEqual([call.url, 403]);
      expect([call.url, response.statusCode]).not.toEqual([call.url, 401]);
    }
  });

  it("an admin from before levels existed (admin_role null) is a full admin", async () => {
    const legacy = await seedAdmin(t.app, "legacy@tessera.test");
    await t.app.ctx.db.update(users).set({ adminRole: null }).where(eq(users.id, legacy.userId));
    const response = await t.app.inject({
      method: "POST",
      url: "/admin/api/v1/api-keys",
      headers: { authorization: legacy.authorization, "content-type": "application/json" },
      payload: JSON.stringify({ name: "legacy" }),
    });
    expect(response.statusCode).toBe(201);
  });
});

describe("admin API keys: create, list, revoke", () => {
  it("a created key works, is listed without its hash, and stops working once revoked (audited)", async () => {
    const created = await t.app.inject({
      method: "POST",
      url: "/admin/api/v1/api-keys",
      headers: { authorization: admin.authorization, "content-type": "application/json" },
      payload: JSON.stringify({ name: "deploy bot" }),
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers["cache-control"]).toBe("no-store");
    const body = created.json();
    expect(body.key).toMatch(/^tak_/);
    const bearer = { authorization: `Bearer ${body.key}` };
    expect((await t.app.inject({ url: "/admin/api/v1/api-keys", headers: bearer })).statusCode).toBe(200);

    const list = (await t.app.inject({ url: "/admin/api/v1/api-keys", headers: bearer })).json();
    const listed = list.api_keys.find((k: { id: string }) => k.id === body.id);
    expect(listed).toEqual({
      id: body.id,
      name: "deploy bot",
      user_id: admin.userId,
      created_at: expect.any(String),
      last_used_at: expect.any(String),
      revoked_at: null,
    });
    expect(JSON.stringify(list)).not.toContain(body.key);

    const revoked = await t.app.inject({
      method: "POST",
      url: `/admin/api/v1/api-keys/${body.id}/revoke`,
      headers: { authorization: admin.authorization },
    });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().revoked_at).toEqual(expect.any(String));
    const after = await t.app.inject({ url: "/admin/api/v1/api-keys", headers: bearer });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe("UNAUTHENTICATED");
    const [row] = await t.app.ctx.db.select().from(apiKeys).where(eq(apiKeys.id, body.id));
    expect(row?.revokedAt).not.toBeNull();
    const events = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "admin.api_key_revoked"));
    expect(events.some((e) => e.actorId === admin.userId && e.details?.keyId === body.id)).toBe(true);
  });

  it("an unknown key id answers 404 API_KEY_NOT_FOUND", async () => {
    for (const id of ["00000000-0000-4000-8000-000000000000", "not-a-uuid"]) {
      const response = await t.app.inject({
        method: "POST",
        url: `/admin/api/v1/api-keys/${id}/revoke`,
        headers: { authorization: admin.authorization },
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().error.code).toBe("API_KEY_NOT_FOUND");
    }
  });
});

describe("GET /admin/api/v1/audit-events", () => {
  it("filters by user, client, event (exact or prefix), ip and time, and pages with a cursor", async () => {
    const shop = await registerClient(t.app, { name: "Audit shop" });
    const base = new Date("2030-01-01T00:00:00Z");
    const rows = Array.from({ length: 7 }, (_, i) => ({
      at: new Date(base.getTime() + i * 60_000),
      event: i % 2 ? "user.signed_in" : "user.sign_in_failed",
      outcome: (i % 2 ? "success" : "failure") as "success" | "failure",
      userId: target.id,
      clientId: shop.clientId,
      ip: i < 3 ? "203.0.113.9" : "198.51.100.7",
    }));
    await t.app.ctx.db.insert(auditEvents).values(rows);
    const get = (query: string) =>
      t.app.inject({ url: `/admin/api/v1/audit-events?${query}`, headers: { authorization: support.authorization } });

    const first = await get(`user=${target.id}&client=${shop.clientId}&limit=3`);
    expect(first.statusCode).toBe(200);
    const page1 = first.json();
    expect(page1.audit_events.map((e: { at: string }) => e.at)).toEqual([
      "2030-01-01T00:06:00.000Z",
      "2030-01-01T00:05:00.000Z",
      "2030-01-01T00:04:00.000Z",
    ]);
    expect(page1.next_cursor).toEqual(expect.any(String));
    const page2 = (await get(`user=${target.id}&client=${shop.clientId}&limit=3&cursor=${page1.next_cursor}`)).json();
    const page3 = (await get(`user=${target.id}&client=${shop.clientId}&limit=3&cursor=${page2.next_cursor}`)).json();
    expect(page2.audit_events).toHaveLength(3);
    expect(page3.audit_events).toHaveLength(1);
    expect(page3.next_cursor).toBeNull();

    const signedIn = (await get(`client=${shop.clientId}&event=user.signed_in`)).json();
    expect(signedIn.audit_events).toHaveLength(3);
    expect((await get(`client=${shop.clientId}&event=user.*`)).json().audit_events).toHaveLength(7);
    expect((await get(`client=${shop.clientId}&ip=203.0.113.9`)).json().audit_events).toHaveLength(3);
    const window = await get(`client=${shop.clientId}&from=2030-01-01T00:02:00Z&to=2030-01-01T00:04:00Z`);
    expect(window.json().audit_events.map((e: { at: string }) => e.at)).toEqual([
      "2030-01-01T00:04:00.000Z",
      "2030-01-01T00:03:00.000Z",
      "2030-01-01T00:02:00.000Z",
    ]);
    expect(signedIn.audit_events[0]).toEqual({
      id: expect.any(String),
      at: "2030-01-01T00:05:00.000Z",
      event: "user.signed_in",
      outcome: "success",
      user_id: target.id,
      actor_id: null,
      client_id: shop.clientId,
      session_id: null,
      ip: "198.51.100.7",
      user_agent: null,
      details: null,
    });
  });

  it("refuses bad filters with 400 VALIDATION_FAILED naming the field", async () => {
    for (const [query, field] of [
      ["user=nope", "user"],
      ["ip=999.1.1.1", "ip"],
      ["from=yesterday", "from"],
      ["cursor=%25%25", "cursor"],
      ["cursor=bm9wZQ", "cursor"],
      ["limit=501", "limit"],
      ["event=DROP%20TABLE", "event"],
      ["user=a&user=b", "user"],
      ["unknown=1", "(body)"],
    ] as const) {
      const response = await t.app.inject({
        url: `/admin/api/v1/audit-events?${query}`,
        headers: { authorization: admin.authorization },
      });
      expect([query, response.statusCode, response.json().error.code]).toEqual([query, 400, "VALIDATION_FAILED"]);
      expect(response.json().error.fields?.[0]?.field ?? "(body)").toBe(field);
    }
  });
});

describe("GET /admin/api/v1/audit-events/export", () => {
  it("streams NDJSON and CSV of the filtered set; CSV neutralises formulas and quotes", async () => {
    const user = await createUser(t.app, { email: "export@example.com" });
    await t.app.ctx.db.insert(auditEvents).values([
      { event: "user.signed_in", outcome: "success", userId: user.id, userAgent: '=HYPERLINK("http://x","y")' },
      { event: "user.signed_out", outcome: "success", userId: user.id, userAgent: "Mozilla, 5.0\nnext" },
    ]);
    const ndjson = await t.app.inject({
      url: `/admin/api/v1/audit-events/export?user=${user.id}`,
      headers: { authorization: support.authorization },
    });
    expect(ndjson.statusCode).toBe(200);
    expect(ndjson.headers["content-type"]).toBe("application/x-ndjson");
    expect(ndjson.headers["content-disposition"]).toMatch(/^attachment; filename="audit-.*\.ndjson"$/);
    const lines = ndjson.body
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.event)).toEqual(["user.signed_out", "user.signed_in"]);

    const csv = await t.app.inject({
      url: `/admin/api/v1/audit-events/export?user=${user.id}&format=csv`,
      headers: { authorization: support.authorization },
    });
    expect(csv.headers["content-type"]).toBe("text/csv; charset=utf-8");
    const [header, ...rest] = csv.body.split("\r\n");
    expect(header).toBe("id,at,event,outcome,user_id,actor_id,client_id,session_id,ip,user_agent,details");
    expect(csv.body).toContain(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csv.body).toContain('"Mozilla, 5.0\nnext"');
    expect(rest.at(-1)).toBe("");
  });

  it("support may end a user's sessions through the API; the end is audited with the admin's id", async () => {
    const user = await createUser(t.app);
    await oauthSession(t.app, user);
    const response = await t.app.inject({
      method: "POST",
      url: `/admin/api/v1/users/${user.id}/sessions/end`,
      headers: { authorization: support.authorization },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ sessions_ended: 1 });
    const events = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.userId, user.id));
    expect(events.find((e) => e.event === "admin.session_ended")?.actorId).toBe(support.userId);
  });

  it("an admin deletes a user through the API: 204, then 404 USER_NOT_FOUND; not their own account (409)", async () => {
    const user = await createUser(t.app, { email: "leaving@example.com" });
    await oauthSession(t.app, user);
    const del = (id: string, authorization = admin.authorization) =>
      t.app.inject({ method: "DELETE", url: `/admin/api/v1/users/${id}`, headers: { authorization } });
    const support403 = await del(user.id, support.authorization);
    expect(support403.statusCode).toBe(403);
    expect(support403.json().error.code).toBe("FORBIDDEN");

    const deleted = await del(user.id);
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe("");
    const gone = await t.app.inject({
      method: "GET",
      url: `/admin/api/v1/users/${user.id}`,
      headers: { authorization: admin.authorization },
    });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe("USER_NOT_FOUND");
    expect((await del(user.id)).json().error.code).toBe("USER_NOT_FOUND");
    const events = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.userId, user.id));
    expect(events.find((e) => e.event === "admin.user_deleted")?.actorId).toBe(admin.userId);

    const self = await del(admin.userId);
    expect(self.statusCode).toBe(409);
    expect(self.json().error.code).toBe("CONFLICT");
  });
});
