import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrowserSuite, startBrowserSuite } from "./harness.ts";

/**
 * The account lifecycle in a real browser (Debian's Chromium, headless, driven by playwright-core): register → open
 * the verification link from the dev outbox → sign in → sign out → sign in → the account page → end the session. The server
 * listens on 127.0.0.1 (port 0). A screenshot of each page goes to test-output/browser/accounts (git-ignored).
 */

let suite: BrowserSuite;
let context: BrowserContext;
let base: string;

beforeAll(async () => {
  suite = await startBrowserSuite("accounts");
  ({ context, base } = suite);
});

afterAll(() => suite?.close());

const shot = (page: Page, name: string) => suite.shot(page, name);

describe("accounts in a real browser", () => {
  it("register → verify from the outbox → sign in → sign out → sign in → account page → end the session", async () => {
    const page = await context.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const email = "browser-user@example.com";
    const password = "a long browser passphrase";

    await page.goto(`${base}/register`);
    await expect(page.title()).resolves.toBe("Create your account · Tessera");
    // The stylesheet loaded under the CSP (no inline styles): the submit button is styled.
    // The function runs in the page; this project's TypeScript has no DOM types, hence the cast.
    const background = await page
      .locator("button[type=submit]")
      .evaluate(
        (el: unknown) =>
          (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(el)
            .backgroundColor,
      );
    expect(background).toBe("rgb(41, 72, 199)");
    await shot(page, "01-register");
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(`${base}/register/check-email`);
    await expect(page.locator("h1").textContent()).resolves.toBe("Check your email");
    await shot(page, "02-check-email");

    await page.goto(`${base}/dev/outbox`);
    await shot(page, "03-outbox");
    await page.locator('a[href^="/verify-email?token="]').first().click();
    await page.waitForURL(/\/verify-email\?token=/);
    await shot(page, "04-confirm-email");
    await page.getByRole("button", { name: "Confirm my email address" }).click();
    // The link confirms the address but signs nobody in: the password comes next.
    await page.waitForURL(`${base}/login?notice=verified`);
    await expect(page.getByText("Your email address is confirmed. Sign in to continue.").isVisible()).resolves.toBe(
      true,
    );
    expect((await context.cookies(base)).find((c) => c.name === "tessera_session")).toBeUndefined();
    await shot(page, "05-verified-sign-in");
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/account`);
    await expect(page.getByText("not verified yet").count()).resolves.toBe(0);

    await page.getByRole("button", { name: "Sign out" }).first().click();
    await expect(page.getByText("You are signed out").first().isVisible()).resolves.toBe(true);
    await shot(page, "06-signed-out");
    const afterSignOut = await context.cookies(base);
    expect(afterSignOut.find((c) => c.name === "tessera_session")).toBeUndefined();

    await page.goto(`${base}/login`);
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByText("The email or password is incorrect.").isVisible()).resolves.toBe(true);
    // The entered email is kept.
    await expect(page.getByLabel("Email address").inputValue()).resolves.toBe(email);
    await shot(page, "07-login-error");
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/account`);
    await expect(page.locator("h1").textContent()).resolves.toBe("Your account");
    await expect(page.getByText("Chrome on Linux").first().isVisible()).resolves.toBe(true);
    await shot(page, "08-account");
    const session = (await context.cookies(base)).find((c) => c.name === "tessera_session");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax" });

    await page.getByRole("button", { name: "Sign out on this device" }).click();
    await page.waitForURL(`${base}/login?notice=signed_out`);
    await expect(page.getByText("You are signed out.").isVisible()).resolves.toBe(true);
    await shot(page, "09-session-ended");
    await page.goto(`${base}/account`);
    await page.waitForURL(`${base}/login?return_to=%2Faccount`);
    expect(violations).toEqual([]);
  });
});
