import { auditEvents, clients } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertAdminUser, updateAdminUser } from "../../src/queries/admin.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { enableTotp, seedAdmin, sessionCookie } from "./helpers.ts";

let t: TestApp;
let auth: string;
let adminId: string;
const BASE = "/admin/api/v1/clients";

const shop = {
  name: "Shop",
  redirect_uris: ["https://shop.example/cb"],
  post_logout_redirect_uris: ["https://shop.example/"],
  backchannel_logout_uri: "https://shop.example/bcl",
  first_party: true,
};

beforeAll(async () => {
  t = await buildTestApp();
  const seeded = await seedAdmin(t.app);
  auth = seeded.authorization;
  adminId = seeded.userId;
});
afterAll(() => t.close());

async function create(body: unknown = shop) {
  return t.app.inject({ method: "POST", url: BASE, headers: { authorization: auth }, payload: body as object });
}

describe("authentication", () => {
  it("refuses requests without credentials with 401 UNAUTHENTICATED and a Bearer challenge", async () => {
    const res = await t.app.inject({ method: "GET", url: BASE });
    expect(res.statusCode).toBe(401);
    expect(res.headers["www-authenticate"]).toBe('Bearer realm="tessera-admin"');
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.json()).toEqual({
      error: {
        code: "UNAUTHENTICATED",
        message: "Send an admin API key as a Bearer token, or sign in as an admin.",
        status: 401,
        requestId: res.headers["x-request-id"],
      },
    });
  });

  it("refuses a wrong, malformed or oversized API key, and audits the failure", async () => {
    for (const authorization of ["Bearer tak_wrong", "Basic abc", "Bearer ", `Bearer ${"a".repeat(5000)}`, "tak_x"]) {
      const res = await t.app.inject({ method: "GET", url: BASE, headers: { authorization } });
      expect(res.statusCode, authorization.slice(0, 20)).toBe(401);
      expect(res.json().error.code).toBe("UNAUTHENTICATED");
    }
    const failures = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.event, "admin.authentication_failed"));
    expect(failures.length).toBeGreaterThanOrEqual(5);
  });

  it("does not fall back to the session cookie when a bad bearer key is sent", async () => {
    const cookie = await sessionCookie(t.app, adminId);
    const res = await t.app.inject({ method: "GET", url: BASE, headers: { authorization: "Bearer nope", cookie } });
    expect(res.statusCode).toBe(401);
  });

  it("stops honouring an API key when its owner is no longer an active admin", async () => {
    const other = await seedAdmin(t.app, "second-admin@tessera.test");
    const ok = await t.app.inject({ method: "GET", url: BASE, headers: { authorization: other.authorization } });
    expect(ok.statusCode).toBe(200);
    await updateAdminUser(t.app.ctx.db, other.userId, { isAdmin: false });
    const demoted = await t.app.inject({ method: "GET", url: BASE, headers: { authorization: other.authorization } });
    expect(demoted.statusCode).toBe(401);
    await updateAdminUser(t.app.ctx.db, other.userId, { isAdmin: true, disabledAt: t.clock.now() });
    const disabled = await t.app.inject({ method: "GET", url: BASE, headers: { authorization: other.authorization } });
    expect(disabled.statusCode).toBe(401);
  });

  it("refuses a signed-in user who is not an admin with 403 FORBIDDEN", async () => {
    const user = await insertAdminUser(t.app.ctx.db, { email: "plain@tessera.test", isAdmin: false });
    const cookie = await sessionCookie(t.app, user.id);
    const res = await t.app.inject({ method: "GET", url: BASE, headers: { cookie } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({
      error: {
        code: "FORBIDDEN",
        message: "You are not allowed to do this.",
        status: 403,
        requestId: res.headers["x-request-id"],
      },
    });
  });

  it("refuses an admin's browser session without two-step verification with 403 ADMIN_MFA_REQUIRED (#14)", async () => {
    const other = await seedAdmin(t.app, "no-mfa-admin@tessera.test");
    const withoutFactor = await sessionCookie(t.app, other.userId, ["pwd", "otp"]);
    const a = await t.app.inject({ method: "GET", url: BASE, headers: { cookie: withoutFactor } });
    expect([a.statusCode, a.json().error.code]).toEqual([403, "ADMIN_MFA_REQUIRED"]);
    await enableTotp(t.app, other.userId);
    const passwordOnly = await sessionCookie(t.app, other.userId, ["pwd"]);
    const b = await t.app.inject({ method: "GET", url: BASE, headers: { cookie: passwordOnly } });
    expect([b.statusCode, b.json().error.code]).toEqual([403, "ADMIN_MFA_REQUIRED"]);
    const withCode = await sessionCookie(t.app, other.userId, ["pwd", "otp"]);
    expect((await t.app.inject({ method: "GET", url: BASE, headers: { cookie: withCode } })).statusCode).toBe(200);
  });

  it("accepts an admin's browser session for reads, and for writes only with JSON and a same-origin Origin", async () => {
    await enableTotp(t.app, adminId);
    const cookie = await sessionCookie(t.app, adminId, ["pwd", "otp"]);
    const read = await t.app.inject({ method: "GET", url: BASE, headers: { cookie } });
    expect(read.statusCode).toBe(200);

    const noOrigin = await t.app.inject({ method: "POST", url: BASE, headers: { cookie }, payload: shop });
    expect(noOrigin.statusCode).toBe(403);
    expect(noOrigin.json()).toEqual({
      error: {
        code: "CSRF_INVALID",
        message: "Admin API calls from a browser session must come from this site.",
        status: 403,
        requestId: noOrigin.headers["x-request-id"],
      },
    });

    const otherOrigin = await t.app.inject({
      method: "POST",
      url: BASE,
      headers: { cookie, origin: "https://evil.example" },
      payload: shop,
    });
    expect(otherOrigin.statusCode).toBe(403);
    expect(otherOrigin.json().error.code).toBe("CSRF_INVALID");

    const form = await t.app.inject({
      method: "POST",
      url: BASE,
      headers: { cookie, origin: "http://localhost:3000", "content-type": "application/x-www-form-urlencoded" },
      payload: "name=Shop&redirect_uris=https%3A%2F%2Fshop.example%2Fcb",
    });
    expect(form.statusCode).toBe(415);
    expect(form.json().error.code).toBe("UNSUPPORTED_MEDIA_TYPE");

    const ok = await t.app.inject({
      method: "POST",
      url: BASE,
      headers: { cookie, origin: "http://localhost:3000" },
      payload: shop,
    });
    expect(ok.statusCode).toBe(201);
  });
});

describe("POST /admin/api/v1/clients", () => {
  it("creates a client and shows the secret once, stored only as its SHA-256", async () => {
    const res = await create();
    expect(res.statusCode).toBe(201);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.json();
    expect(res.headers.location).toBe(`${BASE}/${body.client_id}`);
    expect(body).toEqual({
      client_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      client_secret: expect.stringMatching(/^tcs_[A-Za-z0-9_-]{43}$/),
      name: "Shop",
      logo_uri: null,
      brand_color: null,
      redirect_uris: ["https://shop.example/cb"],
      post_logout_redirect_uris: ["https://shop.example/"],
      backchannel_logout_uri: "https://shop.example/bcl",
      first_party: true,
      direct_sign_in: false,
      allowed_scopes: ["openid", "profile", "email", "offline_access"],
      grant_types: ["authorization_code", "refresh_token"],
      guest_accounts: false,
      id_token_signed_response_alg: "RS256",
      access_token_ttl_seconds: null,
      token_endpoint_auth_method: "client_secret_basic",
      web_origins: [],
      require_dpop: false,
      previous_secret_expires_at: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
      disabled_at: null,
    });
    const [row] = await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, body.client_id));
    expect(JSON.stringify(row)).not.toContain(body.client_secret);
    expect(row?.clientSecretHash).toMatch(/^[0-9a-f]{64}$/);

    const shown = await t.app.inject({
      method: "GET",
      url: `${BASE}/${body.client_id}`,
      headers: { authorization: auth },
    });
    expect(shown.statusCode).toBe(200);
    expect(shown.json().client_secret).toBeUndefined();

    const [audited] = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.clientId, body.client_id));
    expect(audited).toMatchObject({ event: "admin.client_created", outcome: "success", actorId: adminId });
    expect(JSON.stringify(audited)).not.toContain(body.client_secret);
  });

  it.each([
    [
      "http on a public host",
      "http://shop.example/cb",
      "must use https (http is allowed only for 127.0.0.1, [::1] and localhost)",
    ],
    ["a fragment", "https://shop.example/cb#x", "must not contain a fragment (#)"],
    ["a wildcard host", "https://*.shop.example/cb", "must not contain wildcards"],
    ["a wildcard path", "https://shop.example/*", "must not contain wildcards"],
    ["a relative URI", "/cb", "must be an absolute https:// URI"],
    ["a scheme-relative URI", "//shop.example/cb", "must be an absolute https:// URI"],
    ["a custom scheme", "javascript:alert(1)", "must be an absolute https:// URI"],
    ["user info", "https://shop.example@evil.example/cb", "must not contain user info (@)"],
    ["user info with password", "https://a:b@shop.example/cb", "must not contain user info (@)"],
    ["an upper-case host", "https://Shop.Example/cb", "must be written in canonical form: https://shop.example/cb"],
    [
      "an explicit default port",
      "https://shop.example:443/cb",
      "must be written in canonical form: https://shop.example/cb",
    ],
    ["dot segments", "https://shop.example/a/../cb", "must be written in canonical form: https://shop.example/cb"],
    ["a ..;/ traversal", "https://shop.example/a/..;/cb", "must not contain encoded or disguised path traversal"],
    [
      "a percent-encoded dot",
      "https://shop.example/a/%2e%2e/cb",
      "must not contain encoded or disguised path traversal",
    ],
    ["an encoded slash", "https://shop.example/a%2Fcb", "must not contain encoded or disguised path traversal"],
    ["a backslash", "https://shop.example\\cb", "must be written in canonical form: https://shop.example/cb"],
    ["a space", "https://shop.example/c b", "must not contain spaces or control characters"],
    ["a newline", "https://shop.example/cb\n", "must not contain spaces or control characters"],
    ["an empty string", "", "must not be empty"],
    [
      "a loopback look-alike",
      "http://127.0.0.1.evil.example/cb",
      "must use https (http is allowed only for 127.0.0.1, [::1] and localhost)",
    ],
    ["no path (non-canonical)", "https://shop.example", "must be written in canonical form: https://shop.example/"],
  ])("refuses a redirect URI with %s: 400 INVALID_REDIRECT_URI", async (_label, uri, message) => {
    const res = await create({ ...shop, redirect_uris: ["https://shop.example/ok", uri] });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: "INVALID_REDIRECT_URI",
      status: 400,
      fields: [{ field: "redirect_uris.1", message }],
    });
  });

  it("accepts http only on loopback hosts", async () => {
    const res = await create({
      ...shop,
      redirect_uris: ["http://127.0.0.1:8080/cb", "http://[::1]/cb", "http://localhost:3001/cb?x=1"],
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().redirect_uris).toEqual([
      "http://127.0.0.1:8080/cb",
      "http://[::1]/cb",
      "http://localhost:3001/cb?x=1",
    ]);
  });

  it("validates post-logout, back-channel and logo URIs the same way", async () => {
    const res = await create({
      ...shop,
      post_logout_redirect_uris: ["https://shop.example/#bye"],
      backchannel_logout_uri: "http://shop.example/bcl",
      logo_uri: "https://*.cdn.example/logo.png",
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.fields).toEqual([
      { field: "post_logout_redirect_uris.0", message: "must not contain a fragment (#)" },
      {
        field: "backchannel_logout_uri",
        message: "must use https (http is allowed only for 127.0.0.1, [::1] and localhost)",
      },
      { field: "logo_uri", message: "must not contain wildcards" },
    ]);
  });

  it.each([
    ["a missing name", { redirect_uris: ["https://a.example/cb"] }, "name"],
    ["a missing redirect_uris", { name: "A" }, "redirect_uris"],
    ["an empty redirect_uris", { name: "A", redirect_uris: [] }, "redirect_uris"],
    ["a string redirect_uris", { name: "A", redirect_uris: "https://a.example/cb" }, "redirect_uris"],
    ["an unknown field", { ...shop, client_secret: "mine" }, "(body)"],
    ["an oversized name", { ...shop, name: "x".repeat(1001) }, "name"],
    ["a blank name", { ...shop, name: "   " }, "name"],
    [
      "too many redirect URIs",
      { ...shop, redirect_uris: Array.from({ length: 101 }, (_, i) => `https://a.example/${i}`) },
      "redirect_uris",
    ],
    ["an oversized URI", { ...shop, redirect_uris: [`https://a.example/${"x".repeat(4000)}`] }, "redirect_uris.0"],
    ["scopes without openid", { ...shop, allowed_scopes: ["profile"] }, "allowed_scopes"],
    ["a scope with a space", { ...shop, allowed_scopes: ["openid", "a b"] }, "allowed_scopes.1"],
    ["a non-boolean flag", { ...shop, first_party: "yes" }, "first_party"],
    ["an unknown alg", { ...shop, id_token_signed_response_alg: "none" }, "id_token_signed_response_alg"],
    ["an array body", [shop], "(body)"],
  ])("refuses %s with 400 VALIDATION_FAILED", async (_label, body, field) => {
    const res = await create(body);
    expect(res.statusCode).toBe(400);
    const error = res.json().error;
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.fields.map((f: { field: string }) => f.field)).toContain(field);
  });

  it("validates once, with one set of limits: 20 URIs of at most 2000 characters, named by their wire fields", async () => {
    const uris = (n: number) => Array.from({ length: n }, (_, i) => `https://a.example/${i}`);
    const long = (length: number) => `https://a.example/${"x".repeat(length - "https://a.example/".length)}`;
    expect((await create({ ...shop, redirect_uris: uris(20) })).statusCode).toBe(201);
    expect((await create({ ...shop, redirect_uris: [long(2000)] })).statusCode).toBe(201);
    const tooMany = await create({ ...shop, post_logout_redirect_uris: uris(21) });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().error).toMatchObject({
      code: "VALIDATION_FAILED",
      fields: [{ field: "post_logout_redirect_uris", message: "must have at most 20 URIs" }],
    });
    const tooLong = await t.app.inject({
      method: "PATCH",
      url: `${BASE}/${(await create()).json().client_id}`,
      headers: { authorization: auth, "content-type": "application/json" },
      payload: JSON.stringify({ redirect_uris: ["https://a.example/ok", long(2001)], allowed_scopes: ["profile"] }),
    });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().error.code).toBe("VALIDATION_FAILED");
    expect(
      tooLong
        .json()
        .error.fields.map((f: { field: string }) => f.field)
        .sort(),
    ).toEqual(["allowed_scopes", "redirect_uris.1"]);
  });

  it("answers malformed JSON, a wrong content type, an empty JSON body and an oversized body with 4xx, never 500", async () => {
    const cases = [
      { headers: { "content-type": "application/json" }, payload: "{not json", status: 400, code: "MALFORMED_BODY" },
      { headers: { "content-type": "text/plain" }, payload: "hello", status: 415, code: "UNSUPPORTED_MEDIA_TYPE" },
      {
        headers: { "content-type": "application/x-www-form-urlencoded" },
        payload: "name=a",
        status: 415,
        code: "UNSUPPORTED_MEDIA_TYPE",
      },
      { headers: { "content-type": "application/json" }, payload: "", status: 400, code: "MALFORMED_BODY" },
      {
        headers: { "content-type": "application/json" },
        payload: JSON.stringify({ name: "x".repeat(70 * 1024) }),
        status: 413,
        code: "PAYLOAD_TOO_LARGE",
      },
    ];
    for (const c of cases) {
      const res = await t.app.inject({
        method: "POST",
        url: BASE,
        headers: { authorization: auth, ...c.headers },
        payload: c.payload,
      });
      expect(res.statusCode, c.payload.slice(0, 20)).toBe(c.status);
      expect(res.json().error.code).toBe(c.code);
    }
  });

  it("takes the last of duplicated JSON keys (JSON.parse semantics) without error", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: BASE,
      headers: { authorization: auth, "content-type": "application/json" },
      payload: '{"name":"First","name":"Second","redirect_uris":["https://dup.example/cb"]}',
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().name).toBe("Second");
  });
});

describe("list, show, update, rotate-secret, disable", () => {
  it("lists clients with keyset pagination", async () => {
    await create({ ...shop, name: "P1" });
    await create({ ...shop, name: "P2" });
    const first = await t.app.inject({ method: "GET", url: `${BASE}?limit=1`, headers: { authorization: auth } });
    expect(first.statusCode).toBe(200);
    const page1 = first.json();
    expect(page1.clients).toHaveLength(1);
    expect(typeof page1.next_after).toBe("string");
    const second = await t.app.inject({
      method: "GET",
      url: `${BASE}?limit=500&after=${page1.next_after}`,
      headers: { authorization: auth },
    });
    const ids = second.json().clients.map((c: { client_id: string }) => c.client_id);
    expect(ids).not.toContain(page1.clients[0].client_id);
    expect(second.json().next_after).toBeNull();
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=abc", "limit"],
    ["limit=1&limit=2", "limit"],
    ["after=%00", "after"],
    ["include_disabled=maybe", "include_disabled"],
    ["unknown=1", "(body)"],
  ])("refuses the list query %s with 400 VALIDATION_FAILED", async (query, field) => {
    const res = await t.app.inject({ method: "GET", url: `${BASE}?${query}`, headers: { authorization: auth } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe("VALIDATION_FAILED");
    expect(res.json().error.fields.map((f: { field: string }) => f.field)).toContain(field);
  });

  it("answers 404 CLIENT_NOT_FOUND for unknown and malformed ids on every route", async () => {
    for (const id of ["doesnotexist", "a%20b", "x".repeat(150)]) {
      for (const [method, suffix, payload] of [
        ["GET", "", undefined],
        ["PATCH", "", { name: "n" }],
        ["POST", "/rotate-secret", undefined],
        ["POST", "/disable", undefined],
      ] as const) {
        const res = await t.app.inject({
          method,
          url: `${BASE}/${id}${suffix}`,
          headers: { authorization: auth },
          ...(payload ? { payload } : {}),
        });
        expect(res.statusCode, `${method} ${id}${suffix}`).toBe(404);
        expect(res.json()).toEqual({
          error: {
            code: "CLIENT_NOT_FOUND",
            message: "No client with that id.",
            status: 404,
            requestId: res.headers["x-request-id"],
          },
        });
      }
    }
  });

  it("answers undecodable and over-long ids in the catalog shape (routing errors included)", async () => {
    for (const url of [`${BASE}/${"x".repeat(300)}`, `${BASE}/%E0%A4%A`, `${BASE}/%FF/disable`]) {
      const res = await t.app.inject({ method: "GET", url, headers: { authorization: auth } });
      expect(res.statusCode, url.slice(0, 40)).toBe(404);
      expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(res.json().error).toMatchObject({ code: "NOT_FOUND", status: 404 });
    }
  });

  it("answers 405 with Allow for wrong methods", async () => {
    const res = await t.app.inject({ method: "DELETE", url: `${BASE}/abc`, headers: { authorization: auth } });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe("GET, PATCH");
    expect(res.json().error.code).toBe("METHOD_NOT_ALLOWED");
    const put = await t.app.inject({ method: "PUT", url: BASE, headers: { authorization: auth }, payload: shop });
    expect(put.statusCode).toBe(405);
    expect(put.headers.allow).toBe("GET, POST");
  });

  it("updates fields, validating URIs, and audits with the actor", async () => {
    const { client_id } = (await create()).json();
    const res = await t.app.inject({
      method: "PATCH",
      url: `${BASE}/${client_id}`,
      headers: { authorization: auth },
      payload: { name: "Shop 2", redirect_uris: ["https://shop.example/cb2"], direct_sign_in: true, logo_uri: null },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      client_id,
      name: "Shop 2",
      redirect_uris: ["https://shop.example/cb2"],
      direct_sign_in: true,
      first_party: true,
    });

    const bad = await t.app.inject({
      method: "PATCH",
      url: `${BASE}/${client_id}`,
      headers: { authorization: auth },
      payload: { redirect_uris: ["https://shop.example/cb#frag"] },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe("INVALID_REDIRECT_URI");

    for (const payload of [{}, { client_id: "other" }, { client_secret: "x" }]) {
      const refused = await t.app.inject({
        method: "PATCH",
        url: `${BASE}/${client_id}`,
        headers: { authorization: auth },
        payload,
      });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.code).toBe("VALIDATION_FAILED");
    }

    const events = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.clientId, client_id));
    expect(events.map((e) => [e.event, e.actorId])).toEqual([
      ["admin.client_created", adminId],
      ["admin.client_updated", adminId],
    ]);
  });

  it("sets and clears a per-client access token lifetime within 30..3600 s", async () => {
    const { client_id } = (await create({ ...shop, access_token_ttl_seconds: 600 })).json();
    const url = `${BASE}/${client_id}`;
    const shown = await t.app.inject({ method: "GET", url, headers: { authorization: auth } });
    expect(shown.json().access_token_ttl_seconds).toBe(600);
    for (const bad of [10, 3601, 60.5, "60"]) {
      const res = await t.app.inject({
        method: "PATCH",
        url,
        headers: { authorization: auth },
        payload: { access_token_ttl_seconds: bad },
      });
      expect(res.statusCode, String(bad)).toBe(400);
      expect(res.json().error.code).toBe("VALIDATION_FAILED");
      expect(res.json().error.fields[0].field).toBe("access_token_ttl_seconds");
    }
    const cleared = await t.app.inject({
      method: "PATCH",
      url,
      headers: { authorization: auth },
      payload: { access_token_ttl_seconds: null },
    });
    expect(cleared.json().access_token_ttl_seconds).toBeNull();
  });

  it("enables a disabled client again, audited", async () => {
    const { client_id } = (await create()).json();
    await t.app.inject({ method: "POST", url: `${BASE}/${client_id}/disable`, headers: { authorization: auth } });
    const res = await t.app.inject({
      method: "POST",
      url: `${BASE}/${client_id}/enable`,
      headers: { authorization: auth },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().disabled_at).toBeNull();
    const events = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.clientId, client_id));
    expect(events.map((e) => e.event)).toEqual([
      "admin.client_created",
      "admin.client_disabled",
      "admin.client_enabled",
    ]);
    const get = await t.app.inject({
      method: "GET",
      url: `${BASE}/${client_id}/enable`,
      headers: { authorization: auth },
    });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe("POST");
  });

  it("rotates the secret, returning the new one once", async () => {
    const created = (await create()).json();
    const res = await t.app.inject({
      method: "POST",
      url: `${BASE}/${created.client_id}/rotate-secret`,
      headers: { authorization: auth },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.client_secret).toMatch(/^tcs_/);
    expect(body.client_secret).not.toBe(created.client_secret);
    expect(new Date(body.previous_secret_expires_at).getTime()).toBe(t.clock.now().getTime() + 86400 * 1000);

    const withBody = await t.app.inject({
      method: "POST",
      url: `${BASE}/${created.client_id}/rotate-secret`,
      headers: { authorization: auth },
      payload: { client_secret: "chosen" },
    });
    expect(withBody.statusCode).toBe(400);
    expect(withBody.json().error.code).toBe("VALIDATION_FAILED");
  });

  it("disables a client (idempotently) and lists it only when disabled ones are asked for", async () => {
    const { client_id } = (await create()).json();
    const res = await t.app.inject({
      method: "POST",
      url: `${BASE}/${client_id}/disable`,
      headers: { authorization: auth },
    });
    expect(res.statusCode).toBe(200);
    const disabledAt = res.json().disabled_at;
    expect(disabledAt).toBe(t.clock.now().toISOString());
    t.clock.advance(10);
    const again = await t.app.inject({
      method: "POST",
      url: `${BASE}/${client_id}/disable`,
      headers: { authorization: auth },
      payload: {},
    });
    expect(again.json().disabled_at).toBe(disabledAt);

    const active = await t.app.inject({
      method: "GET",
      url: `${BASE}?include_disabled=false&limit=500`,
      headers: { authorization: auth },
    });
    expect(active.json().clients.map((c: { client_id: string }) => c.client_id)).not.toContain(client_id);
    const all = await t.app.inject({ method: "GET", url: `${BASE}?limit=500`, headers: { authorization: auth } });
    expect(all.json().clients.map((c: { client_id: string }) => c.client_id)).toContain(client_id);
  });
});

describe("rate limit", () => {
  it("limits admin API requests per IP before authenticating: 429 RATE_LIMITED with Retry-After", async () => {
    const limited = await buildTestApp({ RATE_LIMIT_ADMIN: "3/60" });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await limited.app.inject({
          method: "GET",
          url: BASE,
          headers: { authorization: "Bearer tak_guess" },
        });
        statuses.push(res.statusCode);
        if (res.statusCode === 429) {
          expect(res.headers["retry-after"]).toBe("60");
          expect(res.json().error.code).toBe("RATE_LIMITED");
        }
      }
      expect(statuses).toEqual([401, 401, 401, 429]);
      // Only the requests that got past the limit were looked up and audited.
      const failures = await limited.app.ctx.db
        .select()
        .from(auditEvents)
        .where(eq(auditEvents.event, "admin.authentication_failed"));
      expect(failures).toHaveLength(3);
      limited.clock.advance(60);
      const after = await limited.app.inject({
        method: "GET",
        url: BASE,
        headers: { authorization: "Bearer tak_guess" },
      });
      expect(after.statusCode).toBe(401);
    } finally {
      await limited.close();
    }
  });
});
