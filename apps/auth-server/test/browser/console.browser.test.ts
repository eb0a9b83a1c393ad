import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { users } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import * as oidc from "openid-client";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchTestBrowser, type TestBrowser } from "../../../../test-support/chromium.ts";
import { testConfig } from "../../src/config/index.ts";
import { createAdmin } from "../../src/libraries/admin.ts";
import { createRole } from "../../src/libraries/authorization/index.ts";
import { createPlan } from "../../src/libraries/billing/plans.ts";
import { createProvider } from "../../src/libraries/federation/providers.ts";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { build } from "../contract.ts";
import { createUser } from "../oauth/helpers.ts";
import { lowContrastTexts } from "./contrast.ts";

/**
 * The admin console in a real browser (Debian's Chromium via playwright-core), with a real OIDC client
 * (openid-client) as the app: an admin signs in with password and code → creates a client → copies its secret →
 * the app signs a user in with it → the admin finds that sign-in in the audit log → ends the user's sessions → the
 * app's next refresh fails. A support admin sees no rotate button and the API answers 403. Every console page is
 * saved at 1280 px and 390 px under test-output/browser/console/.
 */
const PASSWORD = "a long admin passphrase";
const REDIRECT = "https://rp.example/callback";

let app: FastifyInstance;
let closeApp: () => Promise<void>;
let issuer: string;
let browser: TestBrowser;
let context: BrowserContext;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  const database = await createTestDatabase();
  app = await build(testConfig({ ISSUER: issuer, RATE_LIMIT_ENABLED: "false", ACCOUNT_RESPONSE_FLOOR_MS: "0" }), {
    database,
    mailer: new OutboxMailer(),
  });
  await app.listen({ host: "127.0.0.1", port });
  closeApp = async () => {
    await app.close();
    await database.close();
  };
  browser = await launchTestBrowser("console", { width: 1280, height: 800 });
  context = browser.context;
});
afterAll(async () => {
  await browser?.close();
  await closeApp?.();
});

/** An admin of `level` with two-step verification on; returns the TOTP secret. */
async function seedConsoleAdmin(email: string, level: "admin" | "support"): Promise<string> {
  const meta = { ip: "127.0.0.1", userAgent: "test" };
  const { user } = await createAdmin(app.ctx, { email, password: PASSWORD, force: true });
  await app.ctx.db.update(users).set({ adminRole: level }).where(eq(users.id, user.id));
  const { secret } = await beginTotpEnrolment(app.ctx, meta, user);
  await confirmTotpEnrolment(app.ctx, meta, { userId: user.id, code: currentCode(secret, new Date()) });
  return secret;
}

/** Signs in on the hosted pages from /admin: password, then the next time step's code (the enrolment used this one). */
async function signInToConsole(page: Page, email: string, secret: string) {
  await page.goto(`${issuer}/admin`);
  await page.waitForURL(/\/login\?/);
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/login\/otp/);
  await page.getByLabel("Code").fill(currentCode(secret, new Date(Date.now() + 30_000)));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.waitForURL(`${issuer}/admin`);
}

/** Full-page screenshots at desktop width and at 390 px. */
async function shots(page: Page, name: string) {
  await page.setViewportSize({ width: 1280, height: 800 });
  await browser.shot(page, `${name}-desktop`);
  await page.setViewportSize({ width: 390, height: 844 });
  await browser.shot(page, `${name}-390`);
  // Nothing overflows sideways at 390 px (tables scroll inside their own box).
  const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
  expect([name, overflow <= 1]).toEqual([name, true]);
  await page.setViewportSize({ width: 1280, height: 800 });
  // Sufficient contrast (#14): every visible text meets WCAG AA against its background.
  expect([name, await lowContrastTexts(page)]).toEqual([name, []]);
}

/** The end user's side: a cookie jar over fetch, following Tessera's hosted sign-in form. */
class UserAgent {
  private cookies = new Map<string, string>();
  async send(url: string, init: RequestInit = {}) {
    const response = await fetch(new URL(url, issuer), {
      ...init,
      redirect: "manual",
      headers: {
        ...(init.headers as Record<string, string>),
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
      },
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const eq = pair.indexOf("=");
      const value = pair.slice(eq + 1).trim();
      if (value && !/max-age=0/i.test(line)) this.cookies.set(pair.slice(0, eq).trim(), value);
      else this.cookies.delete(pair.slice(0, eq).trim());
    }
    return { status: response.status, location: response.headers.get("location"), body: await response.text() };
  }
}

describe("admin console in a real browser", () => {
  it("admin: sign in with a code → create a client → copy its secret → an OIDC app signs a user in → audit → end sessions → refresh fails", async () => {
    const adminSecret = await seedConsoleAdmin("root@console.test", "admin");
    const page = await context.newPage();
    const cspViolations: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    await signInToConsole(page, "root@console.test", adminSecret);
    await expect(page.locator("h1").textContent()).resolves.toBe("Overview");
    await shots(page, "01-overview");

    // Create a client with the keyboard only.
    await page.getByRole("link", { name: "Clients", exact: true }).click();
    await page.waitForURL(`${issuer}/admin/clients`);
    await shots(page, "02-clients-empty");
    await page.getByRole("link", { name: "New client" }).click();
    await page.getByLabel("Name").focus();
    await page.keyboard.type("Console RP");
    await page.getByLabel("Redirect URIs", { exact: true }).fill(REDIRECT);
    await page.getByLabel("First-party app (no consent screen)").check();
    await shots(page, "03-client-new");
    await page.getByRole("button", { name: "Create client" }).press("Enter");
    await expect(page.locator("h1").textContent()).resolves.toBe("Client created");
    const clientId = (await page.locator("main code").first().textContent()) as string;

    // Copy the secret with the copy button (the clipboard as a user has it).
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: issuer });
    await page.getByRole("button", { name: "Copy secret" }).click();
    await page.getByText("Copied.").waitFor();
    const secret = await page.evaluate<string>("navigator.clipboard.readText()");
    expect(secret).toBe(await page.getByLabel("Client secret").inputValue());
    expect(secret.length).toBeGreaterThan(40);
    await shots(page, "04-client-secret");

    // The app: openid-client with the copied secret signs a user in.
    const email = "console-user@example.com";
    const userPassword = "an end user passphrase";
    const user = await createUser(app, { email, password: userPassword });
    const config = await oidc.discovery(new URL(issuer), clientId, {}, oidc.ClientSecretBasic(secret), {
      execute: [oidc.allowInsecureRequests],
    });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const authorizationUrl = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: "openid email offline_access",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
    });
    const ua = new UserAgent();
    const toLogin = await ua.send(authorizationUrl.href);
    const form = await ua.send(toLogin.location as string);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1] as string;
    const returnTo = new URL(toLogin.location as string, issuer).searchParams.get("return_to") as string;
    const signedIn = await ua.send("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ _csrf: csrf, return_to: returnTo, email, password: userPassword }).toString(),
    });
    expect(signedIn.status).toBe(303);
    const back = await ua.send(signedIn.location as string);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.location as string), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.refresh_token).toMatch(/^tsr_/);

    // The admin finds that sign-in in the audit log.
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByLabel("Event").fill("user.signed_in");
    await page.getByLabel("Client id").fill(clientId);
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/\/admin\/audit\?/);
    const row = page.locator("table.audit tbody tr").first();
    await expect(row.textContent()).resolves.toContain(clientId);
    await shots(page, "05-audit");

    // From the row to the user, and end all their sessions.
    await row.getByRole("link").first().click();
    await page.waitForURL(`${issuer}/admin/users/${user.id}`);
    await shots(page, "06-user");
    await page.getByRole("button", { name: "End all sessions" }).click();
    await page.getByText("Sessions ended").waitFor();

    // The app's next refresh fails.
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token as string)).rejects.toMatchObject({
      error: "invalid_grant",
    });

    // The remaining pages, for the record.
    await page.goto(`${issuer}/admin/users?q=example`);
    await shots(page, "07-users");
    await page.goto(`${issuer}/admin/clients/${clientId}`);
    await shots(page, "08-client");
    await page.goto(`${issuer}/admin/security`);
    await shots(page, "09-security");

    // The other areas' pages, with something on each (#11, #12, #15, #16).
    const actor = { actorId: null, meta: { ip: "127.0.0.1", userAgent: "test" } };
    await createRole(
      app.ctx,
      clientId,
      { name: "moderator", description: "Mutes chat", permissions: ["chat:mute"] },
      actor,
    );
    await createRole(app.ctx, null, { name: "staff" }, actor);
    await createPlan(
      app.ctx,
      { name: "gold", entitlements: ["gold"], crypto_price: "5.00", crypto_currency: "USD" },
      actor,
    );
    await createProvider(
      app.ctx,
      { slug: "github", type: "oauth2", preset: "github", clientId: "Iv1", clientSecret: "s" },
      actor,
    );
    await page.goto(`${issuer}/admin/roles`);
    await shots(page, "11-roles-global");
    await page.goto(`${issuer}/admin/clients/${clientId}/roles`);
    await shots(page, "12-client-roles");
    await page.goto(`${issuer}/admin/users/${user.id}`);
    await page.getByLabel("Assign a role").selectOption({ label: "Console RP · moderator" });
    await page.getByRole("button", { name: "Assign role" }).click();
    await page.getByText("The role is assigned.").waitFor();
    await page.getByLabel("Grant an entitlement").fill("season-pass");
    await page.getByRole("button", { name: "Grant entitlement" }).click();
    await page.getByText("The entitlement is granted.").waitFor();
    await shots(page, "13-user-roles-entitlements");
    await page.goto(`${issuer}/admin/plans`);
    await shots(page, "14-plans");
    await page.goto(`${issuer}/admin/providers`);
    await shots(page, "15-providers");
    await page.getByRole("link", { name: "GitHub" }).click();
    await page.waitForURL(`${issuer}/admin/providers/github`);
    await shots(page, "16-provider");
    await page.goto(`${issuer}/admin/clients/${clientId}/webhook`);
    await page.getByLabel("URL").fill("https://rp.example/hooks");
    await page.getByLabel("roles.changed").check();
    await page.getByRole("button", { name: "Create webhook" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Webhook signing secret");
    await shots(page, "17-webhook-secret");
    await page.goto(`${issuer}/admin/clients/${clientId}/webhook`);
    await shots(page, "18-client-webhook");
    await page.goto(`${issuer}/admin/webhooks?state=pending`);
    await shots(page, "19-webhooks");

    // "Try it": register the console's callback, then a real sign-in for the client that lands back here.
    await page.goto(`${issuer}/admin/clients/${clientId}`);
    await page.getByRole("button", { name: "Add it to the redirect URIs" }).click();
    await page.getByRole("link", { name: "Try it: sign in to this client" }).click();
    await page.waitForURL(/\/(authorize|admin\/try-it\/callback)/);
    if (!page.url().includes("/admin/try-it/callback")) {
      await page.getByRole("button", { name: "Allow" }).click();
    }
    await page.waitForURL(/\/admin\/try-it\/callback/);
    await expect(page.locator("h1").textContent()).resolves.toBe("Sign-in worked");
    await shots(page, "20-try-it");

    // A public client (a browser game), keyboard only: the type by arrow keys, boxes by space, Enter to create.
    await page.goto(`${issuer}/admin/clients/new`);
    await page.getByLabel("Name").focus();
    await page.keyboard.type("Web game");
    await page.getByRole("radio", { name: /^Confidential: a back end/ }).focus();
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    await expect(page.getByRole("radio", { name: /^Public:/ }).isChecked()).resolves.toBe(true);
    await page.getByLabel("Redirect URIs", { exact: true }).fill("https://game.example/cb");
    await page.getByLabel("Web origins (CORS)").fill("https://game.example");
    await page.getByRole("checkbox", { name: /^Require DPoP/ }).press("Space");
    await page.getByRole("checkbox", { name: /^Device code/ }).press("Space");
    await shots(page, "21-client-new-public");
    await page.getByRole("button", { name: "Create client" }).press("Enter");
    await page.getByText("The public client is created. It has no secret").waitFor();
    await expect(page.locator("h1").textContent()).resolves.toBe("Web game");
    await expect(page.getByLabel("Client secret").count()).resolves.toBe(0);
    await expect(page.getByRole("button", { name: "Rotate secret" }).count()).resolves.toBe(0);
    const facts = (await page.locator("dl.facts").first().textContent()) as string;
    expect(facts).toContain("public (no secret, PKCE)");
    expect(facts).toContain("urn:ietf:params:oauth:grant-type:device_code");
    expect(facts).toContain("https://game.example");
    await shots(page, "22-client-public");
    expect(cspViolations).toEqual([]);
    await page.close();
  });

  it("support: no rotate button, and the API answers 403 to the same session", async () => {
    await context.clearCookies();
    const supportSecret = await seedConsoleAdmin("help@console.test", "support");
    const page = await context.newPage();
    await signInToConsole(page, "help@console.test", supportSecret);
    await page.getByRole("link", { name: "Clients", exact: true }).click();
    // The confidential client (the public one has no secret to rotate, so it would prove nothing).
    const row = page.locator("table tbody tr", { hasText: "Console RP" });
    const clientId = (await row.locator("code").textContent()) as string;
    await row.getByRole("link").click();
    await page.waitForURL(`${issuer}/admin/clients/${clientId}`);
    await expect(page.getByRole("button", { name: "Rotate secret" }).count()).resolves.toBe(0);
    await shots(page, "10-client-as-support");
    const answer = await page.evaluate(async (id) => {
      const response = await fetch(`/admin/api/v1/clients/${id}/rotate-secret`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      return { status: response.status, body: await response.json() };
    }, clientId);
    expect(answer).toEqual({
      status: 403,
      body: { error: expect.objectContaining({ code: "FORBIDDEN", status: 403 }) },
    });
    await page.close();
  });
});
