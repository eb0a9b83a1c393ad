import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Debian's Chromium (`apt-get install chromium`); browsers cannot be downloaded on these machines. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Flags for a headless Chromium on a closed network: without the background-networking ones it keeps trying (and
 * failing) to reach Google's services, many connections at a time.
 */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Every context a browser suite has open, so a failed test can say where each of its pages was (browser-setup.ts). */
export const openContexts = new Set<{ suite: string; context: BrowserContext; shots: string }>();

export interface TestBrowser {
  context: BrowserContext;
  /** Saves a full-page screenshot as test-output/browser/<suite>/<name>.png (git-ignored). */
  shot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

/** A real headless Chromium with a fresh profile, for one browser suite. */
export async function launchTestBrowser(
  suite: string,
  viewport: { width: number; height: number } = { width: 390, height: 844 },
): Promise<TestBrowser> {
  const shots = resolve(import.meta.dirname, "../test-output/browser", suite);
  mkdirSync(shots, { recursive: true });
  const userDataDir = mkdtempSync(join(tmpdir(), "tessera-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    viewport,
    headless: true,
    args: FLAGS,
  });
  // Playwright's own default (30 s) made explicit: a step that cannot finish fails with the step's name well before the
  // test's 120 s limit, instead of the test timing out with no word on where it stood.
  context.setDefaultTimeout(30_000);
  context.setDefaultNavigationTimeout(30_000);
  // newPage() takes no timeout, and Chromium has been seen (upstream: microsoft/playwright#3939, #4761) never to answer
  // it: bounded here like every other step, so such a hang fails in 30 s with its name and the test is tried again.
  const newPage = context.newPage.bind(context);
  context.newPage = () => {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("context.newPage(): no page from Chromium within 30 s")), 30_000);
    });
    return Promise.race([newPage(), limit]).finally(() => clearTimeout(timer));
  };
  const entry = { suite, context, shots };
  openContexts.add(entry);
  return {
    context,
    async shot(page, name) {
      await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    },
    async close() {
      openContexts.delete(entry);
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
