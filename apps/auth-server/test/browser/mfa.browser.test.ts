import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { createUser } from "../oauth/helpers.ts";
import { type BrowserSuite, startBrowserSuite } from "./harness.ts";

/**
 * Two-step verification in a real browser (Debian's Chromium, headless, playwright-core): sign in → set up the
 * authenticator from the account page (QR code shown under the CSP, text secret) → confirm → recovery codes → sign out
 * → sign in with password then code (a wrong one first) → sign in with a recovery code → turn it off. Codes come from
 * the real clock: the sign-in uses the next time step's code (accepted for clock drift), so the step used at
 * enrolment is never replayed. Screenshots go to test-output/browser/mfa (git-ignored).
 */
const PASSWORD = "a long browser passphrase";

let suite: BrowserSuite;
let context: BrowserContext;
let base: string;

beforeAll(async () => {
  suite = await startBrowserSuite("mfa");
  ({ context, base } = suite);
});

afterAll(() => suite?.close());

const shot = (page: Page, name: string) => suite.shot(page, name);

async function signInWithPassword(page: Page, email: string) {
  await page.goto(`${base}/login`);
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function signOut(page: Page) {
  await page.goto(`${base}/account`);
  await page.getByRole("button", { name: "Sign out" }).first().click();
  await page.getByText("You are signed out").first().waitFor();
}

describe("two-step verification in a real browser", () => {
  it("set up → sign in with a code → sign in with a recovery code → turn off", async () => {
    const page = await context.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const email = "browser-mfa@example.com";
    await createUser(suite.app, { email, password: PASSWORD });

    await signInWithPassword(page, email);
    await page.waitForURL(`${base}/account`);
    await page.getByRole("link", { name: "Manage two-step verification" }).click();
    await page.waitForURL(`${base}/account/mfa`);
    await shot(page, "01-mfa-off");
    await page.getByRole("button", { name: "Set up an authenticator app" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Set up your authenticator app");
    // The QR code is a data: URL image, allowed by the CSP and actually decoded by the browser.
    const qr = page.locator('img[src^="data:image/svg+xml"]');
    await expect
      .poll(() => qr.evaluate((img: { complete: boolean; naturalWidth: number }) => img.complete && img.naturalWidth))
      .toBeGreaterThan(0);
    const secret = ((await page.getByTestId("totp-secret").textContent()) ?? "").replace(/\s/g, "");
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    await shot(page, "02-setup");
    await page.getByLabel("Code").fill("000000");
    await page.getByRole("button", { name: "Turn on" }).click();
    await expect(page.getByText("That code is not valid.").first().isVisible()).resolves.toBe(true);
    await page.getByLabel("Code").fill(currentCode(secret, new Date()));
    await page.getByRole("button", { name: "Turn on" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Your recovery codes");
    const codes = (await page.getByTestId("recovery-codes").locator("code").allTextContents()).map((c) => c.trim());
    expect(codes).toHaveLength(10);
    await shot(page, "03-recovery-codes");
    await page.getByRole("link", { name: "I have saved them" }).click();
    await expect(page.getByTestId("recovery-left").textContent()).resolves.toBe("10");

    // Password, then the code page; no session cookie in between.
    await signOut(page);
    await signInWithPassword(page, email);
    await page.waitForURL(`${base}/login/otp`);
    const between = await context.cookies(base);
    expect(between.find((c) => c.name === "tessera_session")).toBeUndefined();
    expect(between.find((c) => c.name === "tessera_mfa")).toMatchObject({ httpOnly: true, sameSite: "Lax" });
    await shot(page, "04-otp");
    await page.getByLabel("Code").fill("123456");
    await page.getByRole("button", { name: "Verify" }).click();
    await expect(page.getByText("That code is not valid.").first().isVisible()).resolves.toBe(true);
    await shot(page, "05-otp-wrong");
    await page.getByLabel("Code").fill(currentCode(secret, new Date(Date.now() + 30_000)));
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL(`${base}/account`);
    const after = await context.cookies(base);
    expect(after.find((c) => c.name === "tessera_session")).toBeTruthy();
    expect(after.find((c) => c.name === "tessera_mfa")).toBeUndefined();

    // A recovery code instead of a code.
    await signOut(page);
    await signInWithPassword(page, email);
    await page.waitForURL(`${base}/login/otp`);
    await page.getByLabel("Code").fill(codes[0] ?? "");
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL(`${base}/account`);

    // Turn it off with the password and another recovery code.
    await page.goto(`${base}/account/mfa`);
    await expect(page.getByTestId("recovery-left").textContent()).resolves.toBe("9");
    await page.getByLabel("Current password").fill(PASSWORD);
    await page.getByLabel("Code from your app, or a recovery code").fill(codes[1] ?? "");
    await page.getByRole("button", { name: "Turn off" }).click();
    await page.waitForURL(`${base}/account/mfa?notice=disabled`);
    await expect(page.getByText("Two-step verification is off.").isVisible()).resolves.toBe(true);
    await shot(page, "06-mfa-turned-off");

    // The password alone signs in again.
    await signOut(page);
    await signInWithPassword(page, email);
    await page.waitForURL(`${base}/account`);
    expect(violations).toEqual([]);
  });
});
