import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrowserSuite, startBrowserSuite } from "../browser/harness.ts";

/** The landing page in headless Chromium: styled under the CSP, its links lead to the sign-in and discovery pages. */
let suite: BrowserSuite;
let context: BrowserContext;
let base: string;

beforeAll(async () => {
  suite = await startBrowserSuite("landing");
  ({ context, base } = suite);
});
afterAll(() => suite?.close());

describe("the landing page in a real browser", () => {
  it("renders without CSP violations and its links work", async () => {
    const page = await context.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const response = await page.goto(`${base}/`);
    expect(response?.status()).toBe(200);
    await expect(page.locator("h1").textContent()).resolves.toBe("Tessera");
    await page.setViewportSize({ width: 1280, height: 800 });
    await suite.shot(page, "landing-desktop");
    await page.setViewportSize({ width: 390, height: 844 });
    await suite.shot(page, "landing-390");

    await page.getByRole("link", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/login`);
    await page.goBack();
    await page.getByRole("link", { name: "OpenID Connect discovery" }).click();
    await page.waitForURL(`${base}/.well-known/openid-configuration`);
    expect(await page.content()).toContain("authorization_endpoint");
    expect(violations).toEqual([]);
  });
});
