import { defineConfig } from "vitest/config";
import { ciReporters } from "./vitest.reporters.ts";

// Real-browser suites (*.browser.test.ts): Debian's Chromium at /usr/bin/chromium driven by playwright-core, against
// the app listening on 127.0.0.1. Run with `pnpm test:browser`; screenshots go to test-output/ (git-ignored).
// One file at a time: each starts its own Chromium, and the machines have 2 cores.
export default defineConfig({
  test: {
    reporters: ciReporters(),
    include: ["apps/*/test/**/*.browser.test.ts", "packages/*/test/**/*.browser.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
