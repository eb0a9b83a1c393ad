import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../../../packages/db/src/testing.ts";
import { type RunningDemo, startDemo } from "../../../../scripts/demo.ts";
import { launchTestBrowser, type TestBrowser } from "../../../../test-support/chromium.ts";

/**
 * One sign-in across two apps, in a real browser (Debian's Chromium, headless, via playwright-core): sign in on
 * demo-web → open demo-game → already signed in (its silent prompt=none check), no prompt → the game's WebSocket is
 * authenticated → sign out in the game → demo-web shows signed out on its next request, and the game's other open
 * socket is closed by the server.
 * Everything runs as `pnpm demo` runs it (scripts/demo.ts), on an in-memory database and free ports on 127.0.0.1.
 * Screenshots of each step go to test-output/browser/sso (git-ignored).
 */

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

let demo: RunningDemo;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let context: BrowserContext;
let browser: TestBrowser;
let dataDir: string;

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = mkdtempSync(join(tmpdir(), "tessera-demo-"));
  const [authPort, webPort, gamePort] = [await freePort(), await freePort(), await freePort()];
  demo = await startDemo({
    env: {
      NODE_ENV: "test",
      PORT: String(authPort),
      DATA_DIR: dataDir,
      TESSERA_MASTER_KEY: "11".repeat(32),
      LOG_LEVEL: "silent",
      RATE_LIMIT_ENABLED: "false",
    },
    database,
    publicHost: "127.0.0.1",
    webPort,
    gamePort,
    stateFile: false,
  });
  browser = await launchTestBrowser("sso", { width: 1000, height: 760 });
  context = browser.context;
});

afterAll(async () => {
  await browser?.close();
  await demo?.close();
  await database?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const shot = (page: Page, name: string) => browser.shot(page, name);

const SCREENSHOTS = resolve(import.meta.dirname, "../../../../test-output/screenshots/demo");

/**
 * A demo page as a desktop and a 390 px phone show it: screenshots of both into test-output/screenshots/demo, no
 * horizontal scrolling at 390 px, and valid nesting (no button inside a link: interactive content in <a> is invalid).
 */
async function checkLayout(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const original = page.viewportSize() ?? { width: 1000, height: 760 };
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-390.png`), fullPage: true });
  expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
  expect(await page.locator("a button, a a, button a, button button").count()).toBe(0);
  await page.setViewportSize(original);
}

const text = (page: Page, testId: string) => page.getByTestId(testId).textContent();

describe("single sign-on across the demo shop and the demo game", () => {
  it("sign in on the shop → the game needs no prompt and its socket is authenticated → sign out in the game ends both", async () => {
    const shop = await context.newPage();
    const issuerPages: string[] = [];
    const appPages: string[] = [];
    context.on("request", (request) => {
      if (
        request.isNavigationRequest() &&
        (request.url().startsWith(demo.webUrl) || request.url().startsWith(demo.gameUrl))
      ) {
        appPages.push(request.url());
      }
      if (
        request.isNavigationRequest() &&
        request.method() === "GET" &&
        request.url().startsWith(`${demo.issuer}/login`)
      ) {
        issuerPages.push(request.url());
      }
    });

    // 1. The shop, signed out; sign in on Tessera's hosted page.
    await shop.goto(demo.webUrl);
    expect(await text(shop, "status")).toBe("Signed out");
    await checkLayout(shop, "shop-signed-out");
    await shop.getByTestId("sign-in").click();
    await shop.waitForURL(`${demo.issuer}/login**`);
    await shot(shop, "01-tessera-sign-in");
    await shop.locator("#email").fill(demo.user.email);
    await shop.locator("#password").fill(demo.user.password);
    await shop.locator("button[type=submit]").click();
    await shop.waitForURL(`${demo.webUrl}/`);
    expect(await text(shop, "user-email")).toBe(demo.user.email);
    await shot(shop, "02-shop-signed-in");
    await checkLayout(shop, "shop-signed-in");
    expect(issuerPages).toHaveLength(1);

    // 2. The game: opening it is enough. Its silent check (prompt=none) finds the Tessera session: signed in at
    // once, and no Tessera page was shown.
    const game = await context.newPage();
    await game.goto(demo.gameUrl);
    await game.waitForURL(`${demo.gameUrl}/`);
    expect(await text(game, "user-email")).toBe(demo.user.email);
    expect(issuerPages).toHaveLength(1); // no second prompt

    // 3. The game's WebSocket is authenticated from the game's own cookies.
    await expect.poll(() => text(game, "socket-status"), { timeout: 10_000 }).toBe("connected as Demo Player");
    await game.getByTestId("target").click();
    await expect.poll(() => text(game, "scoreboard"), { timeout: 10_000 }).toBe("Demo Player: 1");
    await shot(game, "03-game-signed-in-socket-connected");
    await checkLayout(game, "game-signed-in");

    // A second game tab keeps a socket open, to see the server close it when the session ends.
    const arena = await context.newPage();
    await arena.goto(demo.gameUrl);
    await expect.poll(() => text(arena, "socket-status"), { timeout: 10_000 }).toBe("connected as Demo Player");

    // 4. Sign out in the game: RP-initiated logout at Tessera ends the session for every app.
    await game.getByTestId("sign-out").click();
    await expect
      .poll(() => text(game, "status").catch(() => null), { timeout: 15_000 }) // null while navigating
      .toBe("Signed out");
    expect(game.url().startsWith(`${demo.gameUrl}/`)).toBe(true);
    await shot(game, "04-game-signed-out");
    await checkLayout(game, "game-signed-out");
    // Sign-out came back to the app's own URL: no `?state=` (nor any other OAuth parameter) left in it; only the
    // sign-in callback carries them.
    expect(appPages.filter((url) => /[?&](state|code|iss)=/.test(url) && !url.includes("/auth/callback"))).toEqual([]);

    // 5. Tessera's back-channel logout reaches the game, which closes the session's open socket...
    await expect.poll(() => text(arena, "socket-status"), { timeout: 15_000 }).toBe("closed: session ended");
    await shot(arena, "05-game-socket-closed");

    // ...and the shop (same delivery run): its next request shows signed out, though its access JWT had minutes left.
    await expect
      .poll(
        async () => {
          await shop.reload();
          return text(shop, "status");
        },
        { timeout: 15_000 },
      )
      .toBe("Signed out");
    await shot(shop, "06-shop-signed-out");
  });
});
