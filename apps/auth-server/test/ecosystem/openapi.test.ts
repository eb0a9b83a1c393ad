import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCatalog } from "../../src/errors/catalog.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

const METRICS_TOKEN = "metrics-token-openapi-0123456789abcdef";
const MASTER_KEY = "11".repeat(32); // testConfig's master key
const DUMMY = "/test-only/undocumented";

/**
 * Routes that are not API and are left out of the document on purpose: hosted HTML pages, the admin console, static
 * assets. Listed here one by one (not imported), so leaving a new route out is a visible decision in this file.
 */
const EXCLUDED = [
  "/",
  "/docs",
  "/assets/:file",
  "/assets/brand/:file",
  "/register",
  "/register/check-email",
  "/login",
  "/login/otp",
  "/login/passkey",
  "/verify-email",
  "/forgot-password",
  "/forgot-password/sent",
  "/reset-password",
  "/authorize/consent",
  "/authorize/terms",
  "/device",
  "/device/decision",
  "/dev/outbox",
  "/federation/link",
  "/federation/link/email",
  "/federation/link/passkey/options",
  "/federation/link/passkey",
  "/federation/:slug/start",
  "/federation/:slug/callback",
  "/billing/checkout",
  "/billing/return",
  "/account",
  "/account/profile",
  "/account/password",
  "/account/passkeys",
  "/account/passkeys/:id/rename",
  "/account/passkeys/:id/remove",
  "/account/email",
  "/account/export",
  "/account/resend-verification",
  "/account/sessions/end",
  "/account/sessions/end-others",
  "/account/delete",
  "/account/consents/revoke",
  "/account/terms",
  "/account/mfa",
  "/account/mfa/setup",
  "/account/mfa/confirm",
  "/account/mfa/recovery-codes",
  "/account/mfa/disable",
  "/account/identities",
  "/account/identities/link",
  "/account/identities/unlink",
  "/account/billing",
  "/account/billing/portal",
  "/admin",
  "/admin/clients/:id/permissions",
  "/admin/clients/:id/permissions/:permissionId",
  "/admin/clients/:id/permissions/:permissionId/delete",
  "/admin/clients/:id/roles",
  "/admin/clients/:id/roles/:roleId",
  "/admin/clients/:id/roles/:roleId/delete",
  "/admin/clients/:id/try",
  "/admin/clients/:id/try-it/register",
  "/admin/clients/:id/webhook",
  "/admin/clients/:id/webhook/delete",
  "/admin/clients/:id/webhook/rotate-secret",
  "/admin/plans",
  "/admin/plans/:name",
  "/admin/plans/:name/archive",
  "/admin/providers",
  "/admin/providers/:slug",
  "/admin/providers/:slug/disable",
  "/admin/providers/:slug/enable",
  "/admin/roles",
  "/admin/roles/:roleId",
  "/admin/roles/:roleId/delete",
  "/admin/try-it/callback",
  "/admin/users/:id/entitlements",
  "/admin/users/:id/entitlements/revoke",
  "/admin/users/:id/roles",
  "/admin/users/:id/roles/:roleId/unassign",
  "/admin/webhooks",
  "/admin/webhooks/deliveries/:id/redeliver",
  "/admin/audit",
  "/admin/audit/export",
  "/admin/clients",
  "/admin/clients/new",
  "/admin/clients/:id",
  "/admin/clients/:id/rotate-secret",
  "/admin/clients/:id/disable",
  "/admin/clients/:id/enable",
  "/admin/users",
  "/admin/users/:id",
  "/admin/users/:id/sessions/end",
  "/admin/users/:id/two-step/reset",
  "/admin/users/:id/disable",
  "/admin/users/:id/delete",
  "/admin/users/:id/enable",
  "/admin/users/:id/password-reset",
  "/admin/users/:id/level",
  "/admin/security",
  "/admin/security/ip-suspensions/lift",
  "/admin/security/account-locks/clear",
  "/admin/security/api-keys",
  "/admin/security/api-keys/:id/revoke",
  "/admin/security/signing-keys/rotate",
];

type Operation = { operationId?: string; summary?: string; responses?: Record<string, Record<string, unknown>> };
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> };

const toOpenApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** The registered routes the document does not describe and the exclusion list does not name. */
function undocumented(t: TestApp, doc: Doc): string[] {
  const missing: string[] = [];
  for (const route of t.app.registeredRoutes()) {
    if (route.method === "HEAD") continue; // Fastify's automatic HEAD for each GET
    const path = toOpenApiPath(route.url);
    if (Array.isArray(route.method)) {
      // A 405 catch-all (methodNotAllowed and the admin plugins): it must sit on a documented or excluded path.
      if (!doc.paths[path] && !EXCLUDED.includes(route.url)) missing.push(`${route.method.join(",")} ${route.url}`);
      continue;
    }
    if (EXCLUDED.includes(route.url)) continue;
    const op = doc.paths[path]?.[String(route.method).toLowerCase()];
    if (!op?.operationId || !op.summary) missing.push(`${route.method} ${route.url}`);
  }
  return missing;
}

let t: TestApp;
let doc: Doc;
let raw: string;
beforeAll(async () => {
  t = await buildTestApp({ METRICS_TOKEN }, (app) => {
    // A route added without documentation: the coverage check below must name it (and only it).
    app.get(DUMMY, async () => ({ ok: true }));
  });
  const res = await t.app.inject({ method: "GET", url: "/openapi.json" });
  expect(res.statusCode).toBe(200);
  raw = res.body;
  doc = res.json();
}, 0);
afterAll(async () => t?.close());

describe("OpenAPI document at /openapi.json", () => {
  it("is valid OpenAPI 3.1", async () => {
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(structuredClone(doc) as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("describes every registered route except the listed pages (a new route without docs fails)", () => {
    expect(undocumented(t, doc)).toEqual([`GET ${DUMMY}`]);
    // It is still in the document (swagger sees every route), only without an operationId or summary.
    expect(doc.paths[DUMMY]?.get?.operationId).toBeUndefined();
  });

  it("leaves out exactly the listed pages, each of which is a real route", () => {
    const urls = new Set(t.app.registeredRoutes().map((r) => r.url));
    for (const url of EXCLUDED) {
      expect(urls.has(url), url).toBe(true);
      expect(doc.paths[toOpenApiPath(url)], url).toBeUndefined();
    }
  });

  it("covers the account, admin, billing and OAuth/OIDC endpoints", () => {
    for (const [method, path] of [
      ["post", "/api/v1/login"],
      ["get", "/api/v1/me"],
      ["get", "/admin/api/v1/users"],
      ["post", "/admin/api/v1/clients"],
      ["get", "/admin/api/v1/plans"],
      ["post", "/webhooks/stripe"],
      ["get", "/authorize"],
      ["post", "/token"],
      ["get", "/userinfo"],
      ["post", "/introspect"],
      ["post", "/revoke"],
      ["post", "/device_authorization"],
      ["get", "/.well-known/openid-configuration"],
      ["get", "/jwks"],
      ["get", "/logout"],
    ] as const) {
      expect(doc.paths[path]?.[method]?.operationId, `${method} ${path}`).toBeTruthy();
    }
    // Request bodies come from the same zod schemas the handlers parse with.
    const register = doc.paths["/api/v1/register"]?.post as { requestBody?: unknown };
    expect(JSON.stringify(register.requestBody)).toContain('"email"');
  });

  it("has unique operationIds", () => {
    const ids = Object.entries(doc.paths)
      .filter(([path]) => path !== DUMMY)
      .flatMap(([, item]) => Object.values(item).map((op) => op.operationId));
    expect(ids.every((id) => typeof id === "string")).toBe(true);
    expect(ids.length).toBeGreaterThan(100);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });

  it("documents error codes of the catalog, under their catalog status, with a shared error schema", () => {
    const catalog = errorCatalog as Record<string, { status: number }>;
    let documented = 0;
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item)) {
        if (!op.operationId) continue;
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          const codes = (response["x-error-codes"] ?? []) as string[];
          // A few codes have another status on one endpoint by its RFC (RFC 8628 slow_down at /token is 400, RFC
          // 9449's invalid_dpop_proof at a resource is 401); those are named as such.
          const elsewhere = (response["x-error-codes-not-at-catalog-status"] ?? []) as string[];
          for (const code of codes) {
            if (elsewhere.includes(code)) expect(catalog[code], `${op.operationId} ${code}`).toBeDefined();
            else expect(catalog[code]?.status, `${op.operationId} ${code}`).toBe(Number(status));
            documented++;
          }
          if (Number(status) >= 400) {
            expect(codes.length, `${op.operationId} ${status}`).toBeGreaterThan(0);
            expect(JSON.stringify(response.content)).toMatch(/#\/components\/schemas\/(OAuth)?ErrorResponse/);
          }
        }
      }
    }
    expect(documented).toBeGreaterThan(300);
    const login = doc.paths["/api/v1/login"]?.post?.responses ?? {};
    expect(login["401"]?.["x-error-codes"]).toEqual(expect.arrayContaining(["INVALID_CREDENTIALS", "MFA_REQUIRED"]));
    const token = doc.paths["/token"]?.post?.responses ?? {};
    expect(token["401"]?.["x-error-codes"]).toEqual(["invalid_client"]);
    expect(JSON.stringify(token["401"]?.content)).toContain("OAuthErrorResponse");
  });

  it("is cacheable and holds no secret", async () => {
    const res = await t.app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.headers["cache-control"]).toBe("public, max-age=300");
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.headers["set-cookie"]).toBeUndefined();
    expect(raw).not.toContain(METRICS_TOKEN);
    expect(raw).not.toContain(MASTER_KEY);
    expect(raw).not.toMatch(/tsr_|sk_(test|live)_|whsec_|-----BEGIN/);
    // The same bytes for every caller, signed in or not.
    const again = await t.app.inject({ method: "GET", url: "/openapi.json", headers: { cookie: "tessera_session=x" } });
    expect(again.body).toBe(raw);
  });

  it("has a readable docs page under the site's CSP (no script)", async () => {
    const res = await t.app.inject({ method: "GET", url: "/docs" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["content-security-policy"]).toBeTruthy();
    expect(res.body).toContain("<code>POST /token</code>");
    expect(res.body).toContain("invalid_client");
    expect(res.body).not.toContain("<script");
    expect(res.body).not.toContain("style=");
  });
});
