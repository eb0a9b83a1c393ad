import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { authorizeQuery, registerClient } from "../oauth/helpers.ts";
import { type BrowserSuite, startBrowserSuite } from "./harness.ts";

/**
 * Every hosted page in a real Chromium, at desktop width and at 390 px (a small phone): a screenshot of each in
 * test-output/screenshots/hosted/ (git-ignored), no horizontal overflow at 390 px, no CSP violation, valid nesting
 * (no button inside a link), and the German variant of the sign-in page.
 */
const PASSWORD = "a long browser passphrase";
const SHOTS = resolve(import.meta.dirname, "../../../../test-output/screenshots/hosted");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let suite: BrowserSuite;
let context: BrowserContext;
let base: string;
const violations: string[] = [];
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
  });
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
}

async function visit(page: Page, path: string, name: string) {
  const response = await page.goto(`${base}${path}`);
  expect(response?.status(), `${name} (${path})`).toBeLessThan(500);
  await capture(page, name);
}

function lastLink(to: string, kind: string): string {
  const outbox = suite.app.ctx.mailer as OutboxMailer;
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
    await visit(page, "/logout", "logout");
    await visit(page, "/no-such-page", "error");
    await visit(page, "/dev/outbox", "outbox");

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

    expect(violations).toEqual([]);
    expect(visited.length).toBeGreaterThanOrEqual(29);
  }, 600_000);
});
