import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, testConfig } from "../../src/config/index.ts";
import { loggerOptions } from "../../src/http/logger.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { build } from "../contract.ts";

const lines: string[] = [];
let app: FastifyInstance;
let close: () => Promise<void>;

beforeAll(async () => {
  const database = await createTestDatabase();
  app = await build(testConfig({ LOG_LEVEL: "info" }), {
    database,
    clock: new TestClock(),
    logStream: { write: (line) => void lines.push(line) },
  });
  await app.ready();
  close = async () => {
    await app.close();
    await database.close();
  };
}, 0);
afterAll(async () => close?.());

const requestLines = (reqId: string) =>
  lines.map((l) => JSON.parse(l) as { reqId?: string; msg?: string }).filter((l) => l.reqId === reqId);
const get = (url: string, id: string) => app.inject({ method: "GET", url, headers: { "x-request-id": id } });

describe("request logs", () => {
  it("leave the health probes out at info but log other requests", async () => {
    lines.length = 0;
    expect((await get("/healthz", "probe-live")).statusCode).toBe(200);
    expect((await get("/readyz", "probe-ready")).statusCode).toBe(200);
    expect((await get("/.well-known/openid-configuration", "discovery")).statusCode).toBe(200);
    expect(requestLines("probe-live")).toEqual([]);
    expect(requestLines("probe-ready")).toEqual([]);
    expect(requestLines("discovery").map((l) => l.msg)).toEqual(["incoming request", "request completed"]);
  });
});

describe("log format", () => {
  const env = { TESSERA_MASTER_KEY: "11".repeat(32) };
  it("is pino-pretty in development only", () => {
    const options = (nodeEnv: string) => loggerOptions(loadConfig({ ...env, NODE_ENV: nodeEnv })) as object;
    expect(options("development")).toMatchObject({ transport: { target: "pino-pretty" } });
    expect(options("test")).not.toHaveProperty("transport");
  });
  it("is JSON in production", () => {
    const production = loadConfig({
      ...env,
      NODE_ENV: "production",
      ISSUER: "https://id.example.com",
      DATABASE_URL: "postgres://u@db/tessera",
      COOKIE_SECURE: "true",
      MAIL_DRIVER: "mailjet",
      MAILJET_API_KEY: "key",
      MAILJET_API_SECRET: "secret",
    });
    expect(loggerOptions(production)).not.toHaveProperty("transport");
  });
});
