import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { termsAcceptances } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { asc, eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchTestBrowser, type TestBrowser } from "../../../../test-support/chromium.ts";
import { testConfig } from "../../src/config/index.ts";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { build } from "../contract.ts";
import { authorizeQuery, createUser, REDIRECT, registerClient } from "../oauth/helpers.ts";

/**
 * Privacy in a real browser (#16), Debian's Chromium: a user who accepted older terms signs in to an app with the
 * password → the terms interstitial → accepts → lands in the app (its redirect URI, served by the browser's route
 * interception) with a code; the account page shows the security activity; the export downloads after re-entering
 * the password and holds the acceptance just made.
 */
const PASSWORD = "a long browser passphrase";

let app: FastifyInstance;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let browser: TestBrowser;
let base: string;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await build(
    testConfig({
      RATE_LIMIT_ENABLED: "false",
      ACCOUNT_RESPONSE_FLOOR_MS: "0",
      TERMS_VERSION: "2026-12",
      TERMS_URL: "https://tessera.example/terms",
      PRIVACY_VERSION: "p8",
      PRIVACY_URL: "https://tessera.example/privacy",
    }),
    { database, mailer: new OutboxMailer() },
  );
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  browser = await launchTestBrowser("privacy");
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await database?.close();
});

describe("privacy in the browser", { timeout: 240_000 }, () => {
  it("terms re-ask accepted → lands in the app; security activity shown; export downloaded after re-auth", async () => {
    const shop = await registerClient(app, { name: "Own Shop", firstParty: true });
    const user = await createUser(app, { password: PASSWORD });
    await app.ctx.db.insert(termsAcceptances).values({
      userId: user.id,
      termsVersion: "2026-11",
      privacyVersion: "p8",
      context: "register",
      acceptedAt: new Date(Date.now() - 86400_000),
    });
    const page = await browser.context.newPage();
    // The app: its redirect URI answered by the browser itself.
    await page.route(`${REDIRECT}**`, (route) =>
      route.fulfill({ status: 200, contentType: "text/html", body: "<h1>Own Shop home</h1>" }),
    );

    await page.goto(`${base}/authorize?${authorizeQuery(shop)}`);
    await page.waitForURL(/\/login\?/);
    await page.getByLabel("Email address").fill(user.email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Updated terms" }).waitFor();
    await expect(page.getByRole("link", { name: "terms of service" }).getAttribute("href")).resolves.toBe(
      "https://tessera.example/terms",
    );
    await browser.shot(page, "01-terms-interstitial");
    await page.getByRole("button", { name: "Accept and continue" }).click();
    await page.waitForURL(new RegExp(`^${REDIRECT}\\?`));
    await expect(page.locator("h1").textContent()).resolves.toBe("Own Shop home");
    const landed = new URL(page.url());
    expect(landed.searchParams.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(landed.searchParams.get("state")).toBe("st-123");
    const rows = await app.ctx.db
      .select()
      .from(termsAcceptances)
      .where(eq(termsAcceptances.userId, user.id))
      .orderBy(asc(termsAcceptances.acceptedAt));
    expect(rows.map((r) => [r.termsVersion, r.privacyVersion, r.context])).toEqual([
      ["2026-11", "p8", "register"],
      ["2026-12", "p8", "sign_in"],
    ]);

    // The account page: the sign-in just made is in the security activity.
    await page.goto(`${base}/account`);
    const activity = page.getByTestId("activity");
    await activity.waitFor();
    await expect(activity.textContent()).resolves.toContain("Signed in");
    await browser.shot(page, "02-account-activity");

    // The export: the password again, then a download.
    await page.getByRole("link", { name: "Download your data" }).click();
    await page.waitForURL(`${base}/account/export`);
    await page.getByLabel("Current password").fill(PASSWORD);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download" }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^tessera-export-\d{4}-\d{2}-\d{2}\.json$/);
    const path = await download.path();
    const document = JSON.parse(readFileSync(path, "utf8"));
    expect(JSON.stringify(document)).toContain(user.email);
    expect(document.termsAcceptances.map((a: { termsVersion: string }) => a.termsVersion)).toEqual([
      "2026-11",
      "2026-12",
    ]);
    expect(JSON.stringify(document)).not.toContain("argon2");
  });
});
