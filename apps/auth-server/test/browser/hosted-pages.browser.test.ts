import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { termsAcceptances } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { createProvider } from "../../src/libraries/federation/providers.ts";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { build } from "../contract.ts";
import { startOidcUpstream } from "../federation/upstreams.ts";
import { authorizeQuery, basic, createUser, FORM, form, REDIRECT, registerClient } from "../oauth/helpers.ts";
import { lowContrastTexts } from "./contrast.ts";
import { type BrowserSuite, startBrowserSuite } from "./harness.ts";

/**
 * Every hosted page in a real Chromium, at desktop width and at 390 px (a small phone): a screenshot of each in
 * test-output/browser/hosted-pages/ (git-ignored), no horizontal overflow at 390 px, no CSP violation, no script
 * error, valid nesting (no button inside a link), and the German variant of the sign-in page. The pages that need
 * Tessera configured otherwise (terms to accept, an upstream provider to link) are shot on a second Tessera in the
 * second test.
 */
const PASSWORD = "a long browser passphrase";
const SHOTS = resolve(import.meta.dirname, "../../../../test-output/browser/hosted-pages");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let suite: BrowserSuite;
let context: BrowserContext;
let base: string;
const violations: string[] = [];
/**
 * Uncaught exceptions and console errors, except a resource that failed to load (an error page answers 4xx on
 * purpose; the consent page's logo is on a host this closed network cannot resolve).
 */
const scriptErrors: string[] = [];
const visited: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  suite = await startBrowserSuite("hosted-pages");
  ({ context, base } = suite);
}, 300_000);

afterAll(() => suite?.close());

async function newPage(): Promise<Page> {
  const page = await context.newPage();
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    else if (message.type() === "error" && !message.text().startsWith("Failed to load resource:")) {
      scriptErrors.push(`${page.url()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => scriptErrors.push(`${page.url()}: ${error.message}`));
  return page;
}

/** Shoots the page as it is now at both widths; at 390 px nothing may be wider than the screen. */
async function capture(page: Page, name: string) {
  visited.push(name);
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  // Evaluated in the page (a string: this project's TypeScript has no DOM types).
  const overflow = (await page.evaluate(`(() => {
    const doc = document.documentElement;
    const wide = [...document.querySelectorAll("body *")]
      .filter((el) => el.getBoundingClientRect().right > doc.clientWidth + 1)
      .map((el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : ""))
      .slice(0, 5);
    return { scroll: doc.scrollWidth, client: doc.clientWidth, wide };
  })()`)) as { scroll: number; client: number; wide: string[] };
  expect(overflow.scroll, `${name} overflows at 390 px: ${overflow.wide.join(", ")}`).toBeLessThanOrEqual(
    overflow.client,
  );
  expect(overflow.wide, name).toEqual([]);
  await page.screenshot({ path: join(SHOTS, `${name}-390.png`), fullPage: true });
  const nested = await page.evaluate('document.querySelectorAll("a button, button a, a a, button button").length');
  expect(nested, `${name}: interactive elements nested`).toBe(0);
  // Every visible text meets WCAG AA contrast against its background.
  expect([name, await lowContrastTexts(page)]).toEqual([name, []]);
}

async function visit(page: Page, path: string, name: string, at = base) {
  const response = await page.goto(`${at}${path}`);
  expect(response?.status(), `${name} (${path})`).toBeLessThan(500);
  await capture(page, name);
}

function lastLink(to: string, kind: string, app: FastifyInstance = suite.app): string {
  const outbox = app.ctx.mailer as OutboxMailer;
  const message = [...outbox.messages].reverse().find((m) => m.to === to && m.kind === kind);
  const url = message?.text.match(/https?:\/\/\S+/)?.[0];
  if (!url) throw new Error(`no ${kind} email to ${to}`);
  const parsed = new URL(url);
  return parsed.pathname + parsed.search;
}

describe("hosted pages at desktop and 390 px", () => {
  it("every page: screenshots, no overflow on a phone, German variant", async () => {
    expect(suite.app.ctx.mailer).toBeInstanceOf(OutboxMailer);
    const page = await newPage();

    await visit(page, "/", "landing");
    await visit(page, "/login", "sign-in");
    await visit(page, "/login?ui_locales=de", "sign-in-de");
    await expect(page.locator("html").getAttribute("lang")).resolves.toBe("de");
    await expect(page.locator("h1").textContent()).resolves.toBe("Anmelden");
    await expect(page.getByRole("button", { name: "Anmelden" }).isVisible()).resolves.toBe(true);
    await visit(page, "/login?ui_locales=es", "sign-in-es");
    await expect(page.locator("h1").textContent()).resolves.toBe("Iniciar sesión");

    // Register: the show-password toggle and the strength hint are there once the script ran.
    await visit(page, "/register", "register");
    const password = page.locator("#password");
    await password.fill("short");
    await expect(page.locator(".strength").textContent()).resolves.toBe("Weak: add more words or characters.");
    await password.fill("four unrelated words together");
    await expect(page.locator(".strength").textContent()).resolves.toBe("Strong password.");
    await page.getByRole("button", { name: "Show", exact: true }).click();
    await expect(password.getAttribute("type")).resolves.toBe("text");
    await capture(page, "register-filled");
    await page.getByRole("button", { name: "Hide", exact: true }).click();
    await expect(password.getAttribute("type")).resolves.toBe("password");

    // A new account: the check-email page, then the verification link.
    const email = "hosted@example.com";
    await page.getByLabel("Email address").fill(email);
    await password.fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(/\/register\/check-email/);
    await capture(page, "register-check-email");
    await visit(page, lastLink(email, "verify_email"), "verify-email");
    await page.getByRole("button", { name: "Confirm my email address" }).click();
    await page.waitForURL(/\/login/);

    await visit(page, "/forgot-password", "forgot-password");
    await page.getByLabel("Email address").fill(email);
    await page.getByRole("button", { name: "Send reset link" }).click();
    await page.waitForURL(/\/forgot-password\/sent/);
    await capture(page, "forgot-password-sent");
    await visit(page, lastLink(email, "reset_password"), "reset-password");

    // Sign in; the account page and its sections.
    await page.goto(`${base}/login`);
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/account`);
    await capture(page, "account");
    await expect(
      page.getByRole("navigation", { name: "Account sections" }).getByRole("link").count(),
    ).resolves.toBeGreaterThan(8);
    await visit(page, "/account?ui_locales=de", "account-de");
    await expect(page.locator("h1").textContent()).resolves.toBe("Ihr Konto");
    await visit(page, "/account/identities", "account-identities");
    await visit(page, "/account/passkeys", "account-passkeys");
    await visit(page, "/account/billing", "account-billing");
    await visit(page, "/account/export", "account-export");

    // Two-step verification: set up → recovery codes (copy + download) → manage.
    await visit(page, "/account/mfa", "mfa-off");
    await page.getByLabel("Current password").fill(PASSWORD);
    await page.getByRole("button", { name: "Set up an authenticator app" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Set up your authenticator app");
    await capture(page, "mfa-setup");
    const secret = ((await page.getByTestId("totp-secret").textContent()) ?? "").replace(/\s/g, "");
    await page.getByLabel("Code").fill(currentCode(secret, new Date()));
    await page.getByRole("button", { name: "Turn on" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Your recovery codes");
    const codes = (await page.getByTestId("recovery-codes").locator("code").allTextContents()).map((c) => c.trim());
    expect(codes).toHaveLength(10);
    const download = page.getByRole("link", { name: "Download codes" });
    const href = (await download.getAttribute("href")) ?? "";
    expect(decodeURIComponent(href.slice(href.indexOf(",") + 1))).toBe(`${codes.join("\n")}\n`);
    await expect(download.getAttribute("download")).resolves.toBe("tessera-recovery-codes.txt");
    await expect(page.getByRole("button", { name: "Copy codes" }).isVisible()).resolves.toBe(true);
    await capture(page, "mfa-recovery-codes");
    await page.getByRole("link", { name: "I have saved them" }).click();
    await capture(page, "mfa-manage");

    // Consent for a third-party app (branded), the device page, the logout confirmation, an error page.
    const client = await registerClient(suite.app, {
      name: "Third Party Shop",
      firstParty: false,
      logoUri: "https://cdn.example/logo.png",
      brandColor: "#0b7a4b",
    });
    await page.goto(`${base}/authorize?${authorizeQuery(client)}`);
    await expect(page.locator("h1").textContent()).resolves.toBe("Third Party Shop wants to access your account");
    await capture(page, "consent");
    // The client's colour, from its stylesheet under the CSP: the Allow button takes it.
    await expect(
      page.evaluate('getComputedStyle(document.querySelector(".decision button[value=approve]")).backgroundColor'),
    ).resolves.toBe("rgb(11, 122, 75)");
    const buttons = (await page.evaluate(
      '[...document.querySelectorAll(".decision button")].map((el) => el.getBoundingClientRect().toJSON())',
    )) as { top: number; bottom: number }[];
    expect(buttons).toHaveLength(2);
    expect((buttons[1]?.top ?? 0) - (buttons[0]?.bottom ?? 0)).toBeGreaterThanOrEqual(8);
    await visit(page, `/authorize?${authorizeQuery(client, { ui_locales: "de" })}`, "consent-de");
    await expect(page.getByRole("button", { name: "Erlauben" }).isVisible()).resolves.toBe(true);
    await visit(page, "/device", "device");
    // The device flow's confirmation (the app's name and scopes) and its end, for a code a console showed.
    const console_ = await registerClient(suite.app, {
      name: "Living Room Arcade",
      redirectUris: [],
      grantTypes: ["urn:ietf:params:oauth:grant-type:device_code"],
    });
    const device = await suite.app.inject({
      method: "POST",
      url: "/device_authorization",
      headers: { ...FORM, authorization: basic(console_.clientId, console_.secret) },
      payload: form({ scope: "openid profile" }),
    });
    const { user_code } = device.json() as { user_code: string };
    await visit(page, `/device?user_code=${user_code}`, "device-code-prefilled");
    await page.getByRole("button", { name: "Continue" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Living Room Arcade wants to sign in on your device");
    await capture(page, "device-confirm");
    await page.getByRole("button", { name: "Allow" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Device connected");
    await capture(page, "device-done");
    await visit(page, "/logout", "logout");
    await visit(page, "/no-such-page", "error");
    await visit(page, "/dev/outbox", "outbox");
    // Billing's own pages: the return from a checkout (paid or canceled), and checkout on a Tessera without billing.
    await visit(page, "/billing/return", "billing-return");
    await visit(page, "/billing/return?status=canceled", "billing-return-canceled");
    expect((await page.goto(`${base}/billing/checkout?plan=pro`))?.status()).toBe(501);
    await capture(page, "billing-disabled");

    // The second step of a sign-in: the code page.
    await page.goto(`${base}/account`);
    await page.getByRole("button", { name: "Sign out" }).first().click();
    await page.getByText("You are signed out").first().waitFor();
    await capture(page, "signed-out");
    await page.goto(`${base}/login`);
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/login\/otp/);
    await capture(page, "mfa-otp");
    // The same second step with a passkey (the page a user with a passkey is offered; it needs the pending sign-in).
    await visit(page, `/login/passkey${new URL(page.url()).search}`, "login-passkey");
    await expect(page.locator("h1").textContent()).resolves.toBe("Use your passkey");

    expect(violations).toEqual([]);
    expect(scriptErrors).toEqual([]);
    expect(visited.length).toBeGreaterThanOrEqual(36);
  }, 600_000);

  it("the pages of a Tessera with terms and an upstream provider: terms re-ask, federation link (password, email)", async () => {
    violations.length = 0;
    scriptErrors.length = 0;
    // Tessera's ISSUER must be the address the browser uses (the upstream redirects there): a port chosen first.
    const probe = createServer();
    await new Promise<void>((done) => probe.listen(0, "127.0.0.1", done));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((done) => probe.close(() => done()));
    const at = `http://127.0.0.1:${port}`;
    const database = await createTestDatabase();
    const app = await build(
      testConfig({
        ISSUER: at,
        RATE_LIMIT_ENABLED: "false",
        ACCOUNT_RESPONSE_FLOOR_MS: "0",
        TERMS_VERSION: "2026-12",
        TERMS_URL: "https://tessera.example/terms",
        PRIVACY_VERSION: "p8",
        PRIVACY_URL: "https://tessera.example/privacy",
      }),
      { database, mailer: new OutboxMailer() },
    );
    const upstream = await startOidcUpstream(`${at}/federation/acme/callback`);
    try {
      await app.listen({ host: "127.0.0.1", port });
      await createProvider(
        app.ctx,
        {
          slug: "acme",
          type: "oidc",
          displayName: "Acme ID",
          issuer: upstream.issuer,
          clientId: upstream.clientId,
          clientSecret: upstream.clientSecret,
        },
        { actorId: null, meta: { ip: undefined, userAgent: "vitest" } },
      );
      /** A user who accepted older terms than the configured ones. */
      const userWithOldTerms = async (email: string) => {
        const user = await createUser(app, { email, password: PASSWORD });
        await app.ctx.db.insert(termsAcceptances).values({
          userId: user.id,
          termsVersion: "2026-11",
          privacyVersion: "p8",
          context: "register",
          acceptedAt: new Date(Date.now() - 86400_000),
        });
        return user;
      };
      // Cookies are per host, not per port: the first test's session must not sign anyone in here.
      await context.clearCookies();
      const page = await newPage();
      await page.route(`${REDIRECT}**`, (route) =>
        route.fulfill({ status: 200, contentType: "text/html", body: "<h1>Own Shop home</h1>" }),
      );

      // The terms interstitial on the way to an app.
      const shop = await registerClient(app, { name: "Own Shop", firstParty: true });
      const reader = await userWithOldTerms("terms@example.com");
      await page.goto(`${at}/authorize?${authorizeQuery(shop)}`);
      await page.waitForURL(/\/login\?/);
      await capture(page, "sign-in-with-provider-and-terms");
      await page.getByLabel("Email address").fill(reader.email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Updated terms" }).waitFor();
      await capture(page, "terms-interstitial");
      await page.getByRole("button", { name: "Accept and continue" }).click();
      await page.waitForURL(new RegExp(`^${REDIRECT}\\?`));
      await context.clearCookies();
      // Declined instead: not signed in to the app, a page that says so.
      const decliner = await userWithOldTerms("decline@example.com");
      await page.goto(`${at}/authorize?${authorizeQuery(shop)}`);
      await page.waitForURL(/\/login\?/);
      await page.getByLabel("Email address").fill(decliner.email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Updated terms" }).waitFor();
      await page.getByRole("button", { name: "Decline", exact: true }).click();
      await expect(page.locator("h1").textContent()).resolves.toBe("You are not signed in to Own Shop");
      await capture(page, "terms-declined");
      await context.clearCookies();

      // The federation link page: an upstream identity whose email has an account (with a password).
      const owner = await userWithOldTerms("owner@example.com");
      upstream.as("hosted-owner", { email: owner.email, email_verified: true });
      await page.goto(`${at}/login`);
      await page.getByRole("link", { name: "Acme ID" }).click();
      await page.waitForURL(`${at}/federation/link`);
      await expect(page.locator("h1").textContent()).resolves.toBe("Link your Acme ID sign-in");
      await capture(page, "federation-link");
      await page.getByLabel(`Password of ${owner.email}`).fill("a wrong passphrase here");
      await page.getByRole("button", { name: "Link and sign in" }).click();
      await page.getByRole("alert").waitFor();
      await capture(page, "federation-link-wrong-password");
      // ...or the emailed link instead: sent, then its confirmation page opened in this browser.
      await page.getByRole("button", { name: `Email me a link to ${owner.email} instead` }).click();
      await expect(page.locator("h1").textContent()).resolves.toBe("Check your email");
      await capture(page, "federation-link-email-sent");
      await visit(page, lastLink(owner.email, "federation_link", app), "federation-link-email", at);
      await expect(page.locator("h1").textContent()).resolves.toBe("Link your sign-in");
      await page.getByRole("button", { name: "Link and sign in" }).click();
      // Signed in to the account pages, whose terms gate asks for the newer terms first.
      await page.waitForURL(/\/account\/terms/);
      await expect(page.locator("h1").textContent()).resolves.toBe("Updated terms");
      await capture(page, "account-terms");
      await page.getByRole("button", { name: "Accept and continue" }).first().click();
      await page.waitForURL(`${at}/account`);
      await expect(page.locator("#identities").textContent()).resolves.toContain("Acme ID");
      // The emailed link once used (or expired): its error variant.
      await visit(page, "/federation/link/email?token=used-or-expired", "federation-link-email-invalid", at);
      await expect(page.locator("h1").textContent()).resolves.toBe("This link does not work");

      expect(violations).toEqual([]);
      expect(scriptErrors).toEqual([]);
    } finally {
      await context.clearCookies();
      await upstream.close();
      await app.close();
      await database.close();
    }
  }, 300_000);
});
