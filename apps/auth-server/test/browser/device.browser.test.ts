import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basic, createUser, FORM, form, registerClient } from "../oauth/helpers.ts";
import { type BrowserSuite, startBrowserSuite } from "./harness.ts";

/**
 * The RFC 8628 verification page in a real browser: the console's verification_uri_complete opened signed out →
 * sign in → back on /device with the code prefilled → the app's name and scopes → Allow; the console's poll then gets
 * its tokens. Screenshots go to test-output/browser/device (git-ignored).
 */

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
let suite: BrowserSuite;
let context: BrowserContext;
let base: string;

beforeAll(async () => {
  suite = await startBrowserSuite("device");
  ({ context, base } = suite);
});

afterAll(() => suite?.close());

describe("device flow in a real browser", () => {
  it("sign in from verification_uri_complete, see the app and scopes, allow; the console gets tokens", async () => {
    const { app } = suite;
    const password = "a long console passphrase";
    const user = await createUser(app, { email: "couch@example.com", password });
    const console_ = await registerClient(app, {
      name: "Living Room Arcade",
      redirectUris: [],
      grantTypes: [DEVICE_GRANT],
    });
    const auth = { ...FORM, authorization: basic(console_.clientId, console_.secret) };
    const started = (
      await app.inject({
        method: "POST",
        url: "/device_authorization",
        headers: auth,
        payload: form({ scope: "openid profile" }),
      })
    ).json() as { device_code: string; user_code: string; verification_uri_complete: string };
    const poll = () =>
      app.inject({
        method: "POST",
        url: "/token",
        headers: auth,
        payload: form({ grant_type: DEVICE_GRANT, device_code: started.device_code }),
      });
    expect((await poll()).json()).toMatchObject({ error: "authorization_pending" });

    const page = await context.newPage();
    const complete = new URL(started.verification_uri_complete);
    await page.goto(`${base}${complete.pathname}${complete.search}`);
    await page.waitForURL(/\/login\?return_to=/);
    await page.getByLabel("Email address").fill(user.email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/device?user_code=${started.user_code}`);
    await expect(page.getByLabel("Code").inputValue()).resolves.toBe(started.user_code);
    await suite.shot(page, "01-enter-code");
    await page.getByRole("button", { name: "Continue" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Living Room Arcade wants to sign in on your device");
    await expect(page.locator("li").allTextContents()).resolves.toEqual(["openid", "profile"]);
    await suite.shot(page, "02-confirm");
    await page.getByRole("button", { name: "Allow" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Device connected");
    await suite.shot(page, "03-done");

    // The suite's clock is the system clock: wait out the polling interval.
    await new Promise((resolve) => setTimeout(resolve, 5100));
    const tokens = await poll();
    expect(tokens.statusCode).toBe(200);
    expect(tokens.json()).toMatchObject({ token_type: "Bearer", scope: "openid profile" });
  }, 60_000);
});
