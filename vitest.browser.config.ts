import { defineConfig } from "vitest/config";
import { ciReporters } from "./vitest.reporters.ts";

// Real-browser suites (*.browser.test.ts): Debian's Chromium at /usr/bin/chromium driven by playwright-core, against
// the app listening on 127.0.0.1. Run with `pnpm test:browser`; screenshots go to test-output/ (git-ignored).
// One file at a time: each starts its own Chromium, and the machines have 2 cores. A failed test prints where its pages
// stood (test-support/browser-setup.ts) and is tried once more: a real browser on a loaded 2-core machine once hung
// past 120 s in CI on a step that passes in seconds everywhere else; a second failure still fails the run.
export default defineConfig({
  test: {
    reporters: ciReporters(),
    include: ["apps/*/test/**/*.browser.test.ts", "packages/*/test/**/*.browser.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    retry: 1,
    setupFiles: ["./test-support/browser-setup.ts", "./test-support/contract-setup.ts"],
  },
});
