import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import { build } from "../src/app.ts";
import { testConfig } from "../src/config/index.ts";
import { errorCatalog } from "../src/errors/catalog.ts";
import { TestClock } from "../src/libraries/clock.ts";

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
  // Every answer of a documented operation is checked against /openapi.json when the app closes (close() below).
  const answered = recordAnswers(app);
  await app.ready();
  return {
    app,
    clock,
    async close() {
      let undocumented: { successes: string[]; errors: string[] } = { successes: [], errors: [] };
      try {
        undocumented = undocumentedAnswers(app, answered);
      } finally {
        await app.close();
        await database.close();
      }
      // The API description is a contract: an answer it does not list fails the file that provoked it.
      const all = [...undocumented.successes, ...undocumented.errors];
      if (all.length) {
        throw new Error(
          `answers /openapi.json does not list (document them in src/http/openapi.ts):\n  ${all.join("\n  ")}`,
        );
      }
    },
  };
}

/**
 * What each route answered during a test file: success statuses, and the catalog code of each error (`error.code`
 * of the JSON shape, `error` of the OAuth one), by "METHOD /template".
 */
interface Answered {
  successes: Map<string, Set<number>>;
  errors: Map<string, Set<string>>;
}

function recordAnswers(app: FastifyInstance): Answered {
  const answered: Answered = { successes: new Map(), errors: new Map() };
  app.addHook("onSend", async (request, reply, payload) => {
    const url = request.routeOptions.url;
    if (!url) return payload;
    const key = `${request.method} ${url}`;
    if (reply.statusCode < 400) {
      answered.successes.set(key, (answered.successes.get(key) ?? new Set()).add(reply.statusCode));
    } else if (typeof payload === "string" && payload.startsWith("{")) {
      try {
        const body = JSON.parse(payload) as { error?: string | { code?: string } };
        const code = typeof body.error === "string" ? body.error : body.error?.code;
        if (code) answered.errors.set(key, (answered.errors.get(key) ?? new Set()).add(`${reply.statusCode} ${code}`));
      } catch {
        // not JSON: not an API error
      }
    }
    return payload;
  });
  return answered;
}

/** Answers of documented operations that /openapi.json does not list for them. */
function undocumentedAnswers(app: FastifyInstance, answered: Answered): { successes: string[]; errors: string[] } {
  const out = { successes: [] as string[], errors: [] as string[] };
  if (!answered.successes.size && !answered.errors.size) return out;
  type Responses = Record<string, { "x-error-codes"?: string[] }>;
  const doc = app.swagger() as {
    paths?: Record<string, Record<string, { operationId?: string; responses?: Responses }>>;
  };
  const responsesOf = (key: string) => {
    const [method = "", url = ""] = key.split(" ");
    const operation = doc.paths?.[url.replace(/:([A-Za-z0-9_]+)/g, "{$1}")]?.[method.toLowerCase()];
    // Only operations the document describes (http/openapi.ts OPERATIONS): not hosted pages or test-only routes.
    return operation?.operationId ? operation.responses : undefined;
  };
  for (const [key, statuses] of answered.successes) {
    const responses = responsesOf(key);
    if (!responses) continue;
    for (const status of statuses) if (!responses[String(status)]) out.successes.push(`${key} answered ${status}`);
  }
  for (const [key, answers] of answered.errors) {
    const responses = responsesOf(key);
    if (!responses) continue;
    for (const answer of answers) {
      const [status = "", code = ""] = answer.split(" ");
      const listed = responses[status]?.["x-error-codes"] ?? [];
      // An OAuth endpoint answers a catalog code by its RFC name (errors/catalog.ts `oauth`: DATABASE_UNAVAILABLE is
      // temporarily_unavailable there).
      const oauthNames = listed.map((c) => (errorCatalog as Record<string, { oauth?: string }>)[c]?.oauth);
      if (!listed.includes(code) && !oauthNames.includes(code)) out.errors.push(`${key} answered ${status} ${code}`);
    }
  }
  return out;
}
