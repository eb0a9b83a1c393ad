import { join } from "node:path";
import { afterEach } from "vitest";
import { openContexts } from "./chromium.ts";

/**
 * After a failed browser test (a timeout included), print each open page's address and save its screenshot as
 * test-output/browser/<suite>/failed-<n>.png, so a failure in CI says where the browser stood.
 */
afterEach(async (context) => {
  if (context.task.result?.state !== "fail") return;
  let n = 0;
  for (const { suite, context: browser, shots } of openContexts) {
    for (const page of browser.pages()) {
      n += 1;
      const path = join(shots, `failed-${n}.png`);
      const saved = await page
        .screenshot({ path, fullPage: true, timeout: 10_000 })
        .then(() => path)
        .catch((error: Error) => `no screenshot (${error.message.split("\n")[0]})`);
      console.error(`[browser ${suite}] after "${context.task.name}": page ${n} at ${page.url()} — ${saved}`);
    }
  }
});
