import { auditEvents, clients } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/libraries/clients/index.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, decode, formFor } from "../accounts/helpers.ts";
import { createUser, sessionCookie } from "../oauth/helpers.ts";
import { type ConsoleUser, consoleUser } from "./helpers.ts";

let t: AccountsTestApp;
let admin: ConsoleUser;
let support: ConsoleUser;
let clientId: string;
let targetId: string;

beforeAll(async () => {
  t = await buildAccountsApp();
  admin = await consoleUser(t.app, t.clock, { email: "root@tessera.test", level: "admin" });
  support = await consoleUser(t.app, t.clock, { email: "help@tessera.test", level: "support" });
  const { client } = await createClient(t.app.ctx, { name: "Shop", redirectUris: ["https://shop.example/cb"] });
  clientId = client.clientId;
  targetId = (await createUser(t.app, { email: "target@example.com" })).id;
});
afterAll(() => t.close());

/** A CSRF token for a browser (from the sign-in form; the token is bound to the browser's CSRF cookie). */
async function csrfOf(browser: Browser): Promise<string> {
  const page = await browser.get("/login?prompt=login");
  return formFor(page.body, "/login")._csrf!;
}

type Route = { method: "GET" | "POST"; url: string; level: "support" | "admin"; fields?: Record<string, string> };

const routes = (): Route[] => [
  { method: "GET", url: "/admin", level: "support" },
  { method: "GET", url: "/admin/clients", level: "support" },
  { method: "GET", url: "/admin/clients/new", level: "admin" },
  { method: "GET", url: `/admin/clients/${clientId}`, level: "support" },
  { method: "GET", url: "/admin/users?q=example", level: "support" },
  { method: "GET", url: `/admin/users/${targetId}`, level: "support" },
  { method: "GET", url: "/admin/audit?event=user.*", level: "support" },
  { method: "GET", url: "/admin/audit/export?format=csv", level: "support" },
  { method: "GET", url: "/admin/security", level: "support" },
  {
    method: "POST",
    url: "/admin/clients",
    level: "admin",
    fields: { name: "New", redirect_uris: "https://n.example/cb", grant_types: "authorization_code" },
  },
  {
    method: "POST",
    url: `/admin/clients/${clientId}`,
    level: "admin",
    fields: { name: "Shop", redirect_uris: "https://shop.example/cb", grant_types: "authorization_code" },
  },
  { method: "POST", url: `/admin/clients/${clientId}/rotate-secret`, level: "admin" },
  { method: "POST", url: `/admin/clients/${clientId}/disable`, level: "admin" },
  { method: "POST", url: `/admin/clients/${clientId}/enable`, level: "admin" },
  { method: "POST", url: `/admin/users/${targetId}/sessions/end`, level: "support" },
  { method: "POST", url: `/admin/users/${targetId}/two-step/reset`, level: "admin" },
  { method: "POST", url: `/admin/users/${targetId}/password-reset`, level: "admin" },
  { method: "POST", url: `/admin/users/${targetId}/disable`, level: "admin" },
  { method: "POST", url: `/admin/users/${targetId}/enable`, level: "admin" },
  { method: "POST", url: `/admin/users/${targetId}/level`, level: "admin", fields: { level: "none" } },
  { method: "POST", url: `/admin/users/${targetId}/delete`, level: "admin" },
  { method: "POST", url: "/admin/security/ip-suspensions/lift", level: "support", fields: { ip: "192.0.2.1" } },
  { method: "POST", url: "/admin/security/account-locks/clear", level: "support", fields: { key: "a".repeat(64) } },
  { method: "POST", url: "/admin/security/signing-keys/rotate", level: "admin" },
  { method: "POST", url: "/admin/security/api-keys", level: "admin", fields: { name: "k" } },
  { method: "POST", url: "/admin/security/api-keys/00000000-0000-4000-8000-000000000000/revoke", level: "admin" },
];

async function call(browser: Browser, route: Route, csrf?: string) {
  if (route.method === "GET") return browser.get(route.url);
  return browser.post(route.url, { ...(csrf === undefined ? {} : { _csrf: csrf }), ...route.fields });
}

describe("console access on every route", () => {
  it("anonymous: pages send to the hosted sign-in and back; forms too (never a change)", async () => {
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

  it("an ordinary signed-in user gets 403 FORBIDDEN (HTML error page), audited", async () => {
    const user = await createUser(t.app);
    const browser = new Browser(t.app);
    browser.cookies.set("tessera_session", (await sessionCookie(t.app, user)).cookie.split("=")[1]!);
    const csrf = await csrfOf(browser);
    for (const route of routes()) {
      const response = await call(browser, route, csrf);
      expect([route.url, response.statusCode]).toEqual([route.url, 403]);
      expect(response.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(response.body).toContain("FORBIDDEN");
    }
    const refused = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.userId, user.id));
    expect(refused.filter((e) => e.event === "admin.authorization_failed")).toHaveLength(routes().length);
  });

  it("an admin without two-step verification is sent to set it up; a session signed in without a code signs in again", async () => {
    const noFactor = await consoleUser(t.app, t.clock, { email: "nofactor@tessera.test", level: "admin", totp: false });
    const pwdOnly = await consoleUser(t.app, t.clock, { email: "pwdonly@tessera.test", level: "admin", amr: ["pwd"] });
    for (const route of routes().filter((r) => r.method === "GET")) {
      const a = await call(noFactor.browser, route);
      expect([route.url, a.statusCode, a.headers.location]).toEqual([route.url, 303, "/account/mfa"]);
      const b = await call(pwdOnly.browser, route);
      expect([route.url, b.statusCode, b.headers.location]).toEqual([
        route.url,
        303,
        `/login?prompt=login&return_to=${encodeURIComponent(route.url)}`,
      ]);
    }
  });

  it("every form refuses a missing or wrong CSRF token with 403 CSRF_INVALID and changes nothing", async () => {
    const before = await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, clientId));
    for (const route of routes().filter((r) => r.method === "POST")) {
      for (const token of [undefined, "forged-token"]) {
        const response = await call(admin.browser, route, token);
        expect([route.url, token, response.statusCode]).toEqual([route.url, token, 403]);
        expect(response.body).toContain("CSRF_INVALID");
      }
    }
    const after = await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, clientId));
    expect(after).toEqual(before);
  });

  it("support reads every page and may end sessions and lift suspensions; everything else is 403", async () => {
    const csrf = await csrfOf(support.browser);
    for (const route of routes()) {
      const response = await call(support.browser, route, csrf);
      if (route.level === "admin") expect([route.url, response.statusCode]).toEqual([route.url, 403]);
      else expect([route.url, response.statusCode < 400 || response.statusCode === 404]).toEqual([route.url, true]);
    }
    const page = await support.browser.get(`/admin/clients/${clientId}`);
    expect(page.body).not.toContain("rotate-secret");
    expect(page.body).not.toContain("Rotate secret");
  });

  it("a full admin reaches every route (sensitive ones answer STEP_UP_REQUIRED without a fresh proof)", async () => {
    const csrf = await csrfOf(admin.browser);
    for (const route of routes()) {
      const response = await call(admin.browser, route, csrf);
      expect([route.url, response.statusCode]).not.toEqual([route.url, 403]);
      expect([route.url, response.statusCode >= 500]).toEqual([route.url, false]);
    }
  });
});

describe("sensitive actions ask for a fresh code or password", () => {
  it("rotating a secret: nothing without a proof or with a wrong code; with a code the new secret is shown once", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Rotate me", redirectUris: ["https://r.example/cb"] });
    const url = `/admin/clients/${client.clientId}/rotate-secret`;
    const hash = async () =>
      (await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, client.clientId)))[0]?.clientSecretHash;
    const original = await hash();
    const csrf = await csrfOf(admin.browser);

    const none = await admin.browser.post(url, { _csrf: csrf });
    expect(none.statusCode).toBe(401);
    expect(none.body).toContain("Confirm with your password or a code from your authenticator app.");
    const wrong = await admin.browser.post(url, { _csrf: csrf, confirm_code: "000000" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("That code is not valid.");
    const badPassword = await admin.browser.post(url, { _csrf: csrf, confirm_password: "not it" });
    expect(badPassword.statusCode).toBe(401);
    expect(await hash()).toBe(original);

    const ok = await admin.browser.post(url, { _csrf: csrf, confirm_code: admin.nextCode() });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers["cache-control"]).toBe("no-store");
    const secret = decode(/id="client-secret" class="secret" readonly value="([^"]+)"/.exec(ok.body)?.[1] ?? "");
    expect(secret.length).toBeGreaterThan(40);
    expect(await hash()).not.toBe(original);
    expect(ok.body).toContain("The previous secret keeps working until");
    const rotations = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.event, "admin.client_secret_rotated"));
    const event = rotations.find((e) => e.clientId === client.clientId);
    expect(event?.actorId).toBe(admin.userId);
    expect(JSON.stringify(event)).not.toContain(secret);
  });
});

describe("users: search with paging, delete and admin level with a fresh proof", () => {
  it("pages through a search 25 at a time", async () => {
    for (let i = 0; i < 30; i++)
      await createUser(t.app, { email: `page-${String(i).padStart(2, "0")}@paging.example` });
    const first = await admin.browser.get("/admin/users?q=paging.example");
    expect(first.statusCode).toBe(200);
    expect(first.body.match(/@paging\.example<\/a>/g)).toHaveLength(25);
    const next = decode(/<a href="([^"]+)">Next page<\/a>/.exec(first.body)?.[1] ?? "");
    expect(next).toBe("/admin/users?q=paging.example&after=page-24%40paging.example");
    const second = await admin.browser.get(next);
    expect(second.body.match(/@paging\.example<\/a>/g)).toHaveLength(5);
    expect(second.body).not.toContain("Next page");
  });

  it("delete asks for a code or the password; with the password the account is gone, audited with the admin", async () => {
    const victim = await createUser(t.app, { email: "delete-me@example.com" });
    const csrf = await csrfOf(admin.browser);
    const url = `/admin/users/${victim.id}/delete`;
    const refused = await admin.browser.post(url, { _csrf: csrf });
    expect(refused.statusCode).toBe(401);
    expect((await admin.browser.get(`/admin/users/${victim.id}`)).statusCode).toBe(200);
    const done = await admin.browser.post(url, { _csrf: csrf, confirm_password: "correct horse battery staple" });
    expect([done.statusCode, done.headers.location]).toEqual([303, "/admin/users?notice=user_deleted"]);
    expect((await admin.browser.get(`/admin/users/${victim.id}`)).statusCode).toBe(404);
    const events = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.userId, victim.id));
    expect(events.find((e) => e.event === "admin.user_deleted")?.actorId).toBe(admin.userId);
  });

  it("changing an admin's level asks for a fresh code; a used code does not work twice", async () => {
    const staff = await createUser(t.app, { email: "staff@example.com" });
    const csrf = await csrfOf(admin.browser);
    const url = `/admin/users/${staff.id}/level`;
    const code = admin.nextCode();
    const ok = await admin.browser.post(url, { _csrf: csrf, level: "support", confirm_code: code });
    expect(ok.statusCode).toBe(303);
    const replay = await admin.browser.post(url, { _csrf: csrf, level: "admin", confirm_code: code });
    expect(replay.statusCode).toBe(401);
    const profile = await admin.browser.get(`/admin/users/${staff.id}`);
    expect(profile.body).toContain("<dt>Admin level</dt><dd>support</dd>");
  });
});

describe("hostile input is escaped", () => {
  it("the client form sets and clears the brand colour; a colour that is not #rrggbb is refused and nothing changes", async () => {
    const { client } = await createClient(t.app.ctx, { name: "Colours", redirectUris: ["https://c.example/cb"] });
    const csrf = await csrfOf(admin.browser);
    const url = `/admin/clients/${client.clientId}`;
    const base = {
      _csrf: csrf,
      name: "Colours",
      redirect_uris: "https://c.example/cb",
      grant_types: "authorization_code",
    };
    const colourOf = async () =>
      (await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, client.clientId)))[0]?.brandColor;

    const set = await admin.browser.post(url, { ...base, brand_color: "#1A73E8" });
    expect(set.statusCode).toBe(303);
    expect(await colourOf()).toBe("#1a73e8");
    expect((await admin.browser.get(url)).body).toContain('value="#1a73e8"');

    const bad = await admin.browser.post(url, { ...base, brand_color: "red;}body{x" });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('value="red;}body{x"');
    expect(await colourOf()).toBe("#1a73e8");

    expect((await admin.browser.post(url, { ...base, brand_color: "" })).statusCode).toBe(303);
    expect(await colourOf()).toBeNull();
  });

  it("client names, logo URLs, search strings and audit filters never reach the page as markup", async () => {
    const { client } = await createClient(t.app.ctx, {
      name: '<script>alert("name")</script>',
      logoUri: 'https://cdn.example/l.png?a="><script>alert(1)</script>',
      redirectUris: ["https://x.example/cb"],
    }).catch(() =>
      createClient(t.app.ctx, { name: '<script>alert("name")</script>', redirectUris: ["https://x.example/cb"] }),
    );
    for (const url of ["/admin/clients", `/admin/clients/${client.clientId}`]) {
      const page = await admin.browser.get(url);
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain("<script>alert");
      expect(page.body).toContain("&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;");
    }
    const search = await admin.browser.get(`/admin/users?q=${encodeURIComponent('"><img src=x onerror=alert(1)>')}`);
    expect(search.statusCode).toBe(200);
    expect(search.body).not.toContain("<img src=x");
    expect(search.body).toContain("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
    const audit = await admin.browser.get(`/admin/audit?client=${encodeURIComponent('"><svg onload=alert(1)>')}`);
    expect(audit.statusCode).toBe(200);
    expect(audit.body).not.toContain("<svg onload");
  });
});
