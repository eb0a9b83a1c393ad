import { clients } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/libraries/clients/index.ts";
import { type AccountsTestApp, buildAccountsApp } from "../accounts/helpers.ts";
import { type ConsoleUser, consoleUser, csrfOf, postPairs } from "./helpers.ts";

/**
 * Issue #13: the console registers every kind of client the admin API and the CLI do — public (no secret), web
 * origins, DPoP, grant types, guest accounts — with the library's validation and its error codes.
 */

let t: AccountsTestApp;
let admin: ConsoleUser;
let support: ConsoleUser;

beforeAll(async () => {
  t = await buildAccountsApp();
  admin = await consoleUser(t.app, t.clock, { email: "root@tessera.test", level: "admin" });
  support = await consoleUser(t.app, t.clock, { email: "help@tessera.test", level: "support" });
});
afterAll(() => t.close());

const DEVICE = "urn:ietf:params:oauth:grant-type:device_code";
const rowsNamed = (name: string) => t.app.ctx.db.select().from(clients).where(eq(clients.name, name));

describe("the new-client form offers every client kind", () => {
  it("shows the client type, web origins, DPoP, grant types and guest accounts", async () => {
    const page = await admin.browser.get("/admin/clients/new");
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('name="token_endpoint_auth_method" value="none"');
    expect(page.body).toContain('name="token_endpoint_auth_method" value="client_secret_basic" checked');
    expect(page.body).toContain('name="web_origins"');
    expect(page.body).toContain('name="require_dpop"');
    expect(page.body).toContain('name="guest_accounts"');
    for (const grant of ["authorization_code", "refresh_token", "client_credentials", DEVICE]) {
      expect(page.body).toContain(`name="grant_types" value="${grant}"`);
    }
    expect(page.body).toContain('name="grant_types" value="authorization_code" checked');
    expect(page.body).not.toContain('name="grant_types" value="client_credentials" checked');
  });

  it("creates a public client: no secret shown; the row is public with its origins, DPoP, grants and guests", async () => {
    const csrf = await csrfOf(admin.browser);
    const created = await postPairs(admin.browser, "/admin/clients", [
      ["_csrf", csrf],
      ["name", "Browser game"],
      ["token_endpoint_auth_method", "none"],
      ["redirect_uris", "https://game.example/cb\r\ncom.example.game:/callback"],
      ["web_origins", "https://game.example\r\nhttp://localhost:5173"],
      ["require_dpop", "on"],
      ["guest_accounts", "on"],
      ["grant_types", "authorization_code"],
      ["grant_types", "refresh_token"],
      ["grant_types", DEVICE],
      ["allowed_scopes", "openid profile offline_access"],
    ]);
    const [row] = await rowsNamed("Browser game");
    expect(row).toBeDefined();
    expect([created.statusCode, created.headers.location]).toEqual([
      303,
      `/admin/clients/${row!.clientId}?notice=public_client_created`,
    ]);
    expect(created.body).toBe("");
    expect(row).toMatchObject({
      tokenEndpointAuthMethod: "none",
      clientSecretHash: null,
      redirectUris: ["https://game.example/cb", "com.example.game:/callback"],
      webOrigins: ["https://game.example", "http://localhost:5173"],
      requireDpop: true,
      guestAccountsEnabled: true,
      grantTypes: ["authorization_code", "refresh_token", DEVICE],
      allowedScopes: ["openid", "profile", "offline_access"],
    });

    const page = await admin.browser.get(created.headers.location as string);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("The public client is created. It has no secret: its apps sign in with PKCE.");
    expect(page.body).toContain("<dt>Type</dt><dd>public (no secret, PKCE)</dd>");
    expect(page.body).toContain(
      "<dt>Web origins (CORS)</dt><dd><code>https://game.example</code> <code>http://localhost:5173</code></dd>",
    );
    expect(page.body).toContain("<dt>DPoP required</dt><dd>yes</dd>");
    expect(page.body).toContain("<dt>Guest accounts</dt><dd>yes</dd>");
    expect(page.body).toContain(
      `<dt>Grant types</dt><dd><code>authorization_code</code> <code>refresh_token</code> <code>${DEVICE}</code></dd>`,
    );
    expect(page.body).not.toContain("client-secret");
    expect(page.body).not.toContain("Rotate secret");
    expect(page.body).not.toContain('name="token_endpoint_auth_method"');
    // Direct sign-in is refused for public clients: their edit form does not offer it.
    expect(page.body).not.toContain('name="direct_sign_in"');
    const list = await admin.browser.get("/admin/clients");
    expect(list.body).toContain('<th scope="col">Type</th>');
    expect(list.body).toContain(`<td><code>${row!.clientId}</code></td>\n      <td>public</td>`);
  });

  it("a confidential client still gets its secret once, with the kinds it asked for", async () => {
    const csrf = await csrfOf(admin.browser);
    const created = await postPairs(admin.browser, "/admin/clients", [
      ["_csrf", csrf],
      ["name", "Game server"],
      ["token_endpoint_auth_method", "client_secret_post"],
      ["redirect_uris", ""],
      ["grant_types", "client_credentials"],
    ]);
    expect(created.statusCode).toBe(200);
    expect(created.headers["cache-control"]).toBe("no-store");
    expect(created.body).toMatch(/id="client-secret" class="secret" readonly value="[^"]{40,}"/);
    const [row] = await rowsNamed("Game server");
    expect(row).toMatchObject({
      tokenEndpointAuthMethod: "client_secret_post",
      grantTypes: ["client_credentials"],
      redirectUris: [],
      requireDpop: false,
      guestAccountsEnabled: false,
      webOrigins: [],
    });
    expect(row?.clientSecretHash).toMatch(/^[0-9a-f]{64}$/);
    // A confidential client's edit form offers direct sign-in; the list says what kind it is.
    const page = await admin.browser.get(`/admin/clients/${row!.clientId}`);
    expect(page.body).toContain('name="direct_sign_in"');
    const list = await admin.browser.get("/admin/clients");
    expect(list.body).toContain(`<td><code>${row!.clientId}</code></td>\n      <td>confidential</td>`);
  });

  it("an invalid web origin: 400 INVALID_REDIRECT_URI shown beside the field, nothing written", async () => {
    const csrf = await csrfOf(admin.browser);
    const refused = await postPairs(admin.browser, "/admin/clients", [
      ["_csrf", csrf],
      ["name", "Bad origin"],
      ["token_endpoint_auth_method", "none"],
      ["redirect_uris", "https://bad.example/cb"],
      ["web_origins", "https://bad.example/app/"],
      ["grant_types", "authorization_code"],
    ]);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain(
      '<div class="alert error" role="alert">Redirect URIs must be https (http only for loopback), without fragments or wildcards. <code>INVALID_REDIRECT_URI</code></div>',
    );
    expect(refused.body).toContain(
      '<span class="error-text" id="web_origins-error">must be exactly an origin (no path, trailing slash or user info): https://bad.example</span>',
    );
    // The form keeps what was typed, including the kind.
    expect(refused.body).toContain('name="token_endpoint_auth_method" value="none" checked');
    expect(refused.body).toContain(">https://bad.example/app/</textarea>");
    expect(await rowsNamed("Bad origin")).toEqual([]);
  });

  it("an invalid redirect URI and an unknown grant type are refused with the API's codes; nothing written", async () => {
    const csrf = await csrfOf(admin.browser);
    const badRedirect = await postPairs(admin.browser, "/admin/clients", [
      ["_csrf", csrf],
      ["name", "Bad redirect"],
      ["redirect_uris", "http://evil.example/cb"],
      ["grant_types", "authorization_code"],
    ]);
    expect(badRedirect.statusCode).toBe(400);
    expect(badRedirect.body).toContain("<code>INVALID_REDIRECT_URI</code>");
    expect(badRedirect.body).toContain(
      '<span class="error-text" id="redirect_uris-error">must use https (http is allowed only for 127.0.0.1, [::1] and localhost)</span>',
    );
    // A private-use scheme is for public clients only.
    const nativeOnConfidential = await postPairs(admin.browser, "/admin/clients", [
      ["_csrf", csrf],
      ["name", "Bad redirect"],
      ["redirect_uris", "com.example.game:/callback"],
      ["grant_types", "authorization_code"],
    ]);
    expect(nativeOnConfidential.statusCode).toBe(400);
    expect(nativeOnConfidential.body).toContain("<code>INVALID_REDIRECT_URI</code>");
    const badGrant = await postPairs(admin.browser, "/admin/clients", [
      ["_csrf", csrf],
      ["name", "Bad redirect"],
      ["redirect_uris", "https://ok.example/cb"],
      ["grant_types", "password"],
    ]);
    expect(badGrant.statusCode).toBe(400);
    expect(badGrant.body).toContain("<code>VALIDATION_FAILED</code>");
    expect(badGrant.body).toContain('id="grant_types-error"');
    const noGrant = await postPairs(admin.browser, "/admin/clients", [
      ["_csrf", csrf],
      ["name", "Bad redirect"],
      ["redirect_uris", "https://ok.example/cb"],
    ]);
    expect(noGrant.statusCode).toBe(400);
    expect(noGrant.body).toContain('<span class="error-text" id="grant_types-error">must not be empty</span>');
    expect(await rowsNamed("Bad redirect")).toEqual([]);
  });
});

describe("editing a client's kinds", () => {
  it("sets and clears web origins, DPoP, guests and grant types; the type stays fixed", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Editable", redirectUris: ["https://e.example/cb"] });
    const url = `/admin/clients/${client.clientId}`;
    const form = await admin.browser.get(url);
    expect(form.body).toContain("<dt>Type</dt><dd>confidential (client_secret_basic)</dd>");
    expect(form.body).toContain('name="grant_types" value="refresh_token" checked');
    const csrf = await csrfOf(admin.browser);
    const base: Array<[string, string]> = [
      ["_csrf", csrf],
      ["name", "Editable"],
      ["redirect_uris", "https://e.example/cb"],
      ["allowed_scopes", "openid"],
    ];
    const saved = await postPairs(admin.browser, url, [
      ...base,
      ["web_origins", "https://e.example"],
      ["require_dpop", "on"],
      ["guest_accounts", "on"],
      ["grant_types", "authorization_code"],
      ["grant_types", "client_credentials"],
      // Ignored on edit: the auth method is fixed at registration.
      ["token_endpoint_auth_method", "none"],
    ]);
    expect([saved.statusCode, saved.headers.location]).toEqual([303, `${url}?notice=client_saved`]);
    const [row] = await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, client.clientId));
    expect(row).toMatchObject({
      tokenEndpointAuthMethod: "client_secret_basic",
      webOrigins: ["https://e.example"],
      requireDpop: true,
      guestAccountsEnabled: true,
      grantTypes: ["authorization_code", "client_credentials"],
    });
    const shown = await admin.browser.get(url);
    expect(shown.body).toContain('name="require_dpop" checked');
    expect(shown.body).toContain('name="grant_types" value="client_credentials" checked');
    expect(shown.body).toContain(">https://e.example</textarea>");

    const cleared = await postPairs(admin.browser, url, [...base, ["grant_types", "authorization_code"]]);
    expect(cleared.statusCode).toBe(303);
    const [after] = await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, client.clientId));
    expect(after).toMatchObject({
      webOrigins: [],
      requireDpop: false,
      guestAccountsEnabled: false,
      grantTypes: ["authorization_code"],
    });

    const bad = await postPairs(admin.browser, url, [
      ...base,
      ["web_origins", "ftp://e.example"],
      ["grant_types", "authorization_code"],
    ]);
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain("<code>INVALID_REDIRECT_URI</code>");
    expect(bad.body).toContain('id="web_origins-error"');
    const [unchanged] = await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, client.clientId));
    expect(unchanged).toEqual(after);
  });

  it("support sees the kinds read-only", async () => {
    const { client } = await createClient(t.app.ctx, {
      name: "Read only",
      redirectUris: ["https://ro.example/cb"],
      webOrigins: ["https://ro.example"],
      requireDpop: true,
    });
    const page = await support.browser.get(`/admin/clients/${client.clientId}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("<dt>Web origins (CORS)</dt><dd><code>https://ro.example</code></dd>");
    expect(page.body).toContain("<dt>DPoP required</dt><dd>yes</dd>");
    expect(page.body).not.toContain('name="grant_types"');
  });
});
