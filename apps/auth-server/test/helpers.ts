import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import { testConfig } from "../src/config/index.ts";
import { TestClock } from "../src/libraries/clock.ts";
import { build } from "./contract.ts";

export interface TestApp {
  app: FastifyInstance;
  clock: TestClock;
  close(): Promise<void>;
}

/**
 * Builds the app on a fresh migrated database (in-memory PGlite, or a throwaway PostgreSQL database when
 * TEST_DATABASE_URL is set) with a movable clock. Call `close()` in afterAll.
 */
export async function buildTestApp(
  env: Record<string, string> = {},
  /** Registers extra routes before the app is ready (tests only). */
  extend?: (app: FastifyInstance) => void,
): Promise<TestApp> {
  const database = await createTestDatabase();
  const clock = new TestClock();
  const app = await build(testConfig(env), { database, clock });
  extend?.(app);
  // Every answer of a documented operation is checked against /openapi.json when the test file ends (contract.ts).
  await app.ready();
  return {
    app,
    clock,
    async close() {
      await app.close();
      await database.close();
    },
  };
}
