import { defineConfig } from "vitest/config";
import { ciReporters } from "./vitest.reporters.ts";

// One runner for the whole workspace, running TypeScript from source (no build step).
// Browser (Chromium) suites live in *.browser.test.ts and run through vitest.browser.config.ts.
export default defineConfig({
  test: {
    reporters: ciReporters(),
    // Vitest's default is one worker fewer than the CPUs: one file at a time on the 2-core machines here, while most
    // files spend their time waiting (argon2's thread pool, PGlite, child processes). Two files at a time took the
    // embedded suite from 6.5 to 4.6 minutes there, all green. The PostgreSQL run keeps the default (one at a time).
    ...(process.env.TEST_DATABASE_URL ? {} : { maxWorkers: 2 }),
    projects: [
      {
        test: {
          name: "db",
          root: "packages/db",
          include: ["test/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "auth-server",
          root: "apps/auth-server",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.browser.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "sdk",
          root: "packages/sdk",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.browser.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "demo-web",
          root: "apps/demo-web",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.browser.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "demo-game",
          root: "apps/demo-game",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.browser.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
