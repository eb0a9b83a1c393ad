import { users } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { sql } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { build } from "../contract.ts";
import { Browser, formFor, linkFrom, PASSWORD, tokenFrom } from "./helpers.ts";

/**
 * SECURITY.md "Everywhere": no secrets, passwords or tokens in logs. The whole account lifecycle runs at
 * LOG_LEVEL=trace with the development outbox logging through the app's logger (as under `pnpm start`), and no
 * password, email-link token, session cookie or CSRF value may appear in any log line.
 */
let app: FastifyInstance;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
const lines: string[] = [];
const FAILING_VALUE = "secret-value-in-a-failed-query";
const FAILING_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0LXNhbHQ$c2VjcmV0LWhhc2gtaW4tYS1sb2c";

beforeAll(async () => {
  database = await createTestDatabase();
  app = await build(testConfig({ LOG_LEVEL: "trace", RATE_LIMIT_ENABLED: "false", ACCOUNT_RESPONSE_FLOOR_MS: "0" }), {
    database,
    clock: new TestClock(),
    logStream: { write: (line) => void lines.push(line) },
  });
  // Routes whose queries fail, as a bug would: their errors carry the values the queries were sent.
  app.get("/test/failing-query", async () => {
    await app.ctx.db.execute(sql`select ${FAILING_VALUE}::int`);
    return {};
  });
  app.get("/test/failing-unique", async () => {
    const now = new Date();
    const row = { passwordHash: FAILING_HASH, createdAt: now, updatedAt: now };
    await app.ctx.db.insert(users).values({ ...row, email: "dup@example.com" });
    await app.ctx.db.insert(users).values({ ...row, email: "dup@example.com" });
    return {};
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await database?.close();
});

describe("logs", () => {
  it("log a failed query's error (500) without the values it carried", async () => {
    for (const url of ["/test/failing-query", "/test/failing-unique"]) {
      const res = await app.inject({ method: "GET", url });
      expect(res.statusCode).toBe(500);
      expect(res.json().error.code).toBe("INTERNAL_ERROR");
    }
    const errors = lines.filter((l) => l.includes('"unhandled error"'));
    expect(errors).toHaveLength(2);
    const log = errors.join("");
    expect(log).toContain("Failed query: select $1::int");
    expect(log).toContain("params: [redacted]");
    expect(log).toContain('"code":"23505"');
    for (const secret of [FAILING_VALUE, FAILING_HASH, "dup@example.com"]) expect(log).not.toContain(secret);
  });

  it("hold no password, email-link token, session cookie or CSRF value at LOG_LEVEL=trace", async () => {
    const outbox = app.ctx.mailer;
    if (!(outbox instanceof OutboxMailer)) throw new Error("expected the development outbox");
    const email = "logged@example.com";
    const newPassword = "another secret passphrase";
    const secrets: string[] = [PASSWORD, newPassword, "wrong secret passphrase"];

    const browser = new Browser(app);
    const registered = await browser.submit("/register", { email, password: PASSWORD });
    expect(registered.statusCode).toBe(303);
    const verifyLink = linkFrom(outbox, email, "verify_email");
    secrets.push(tokenFrom(verifyLink));
    const confirm = await browser.get(verifyLink);
    const form = formFor(confirm.body, "/verify-email");
    secrets.push(form._csrf ?? "");
    expect((await browser.post("/verify-email", form)).statusCode).toBe(303);

    const wrong = await browser.json("POST", "/api/v1/login", { email, password: "wrong secret passphrase" });
    expect(wrong.statusCode).toBe(401);
    const signedIn = await browser.json("POST", "/api/v1/login", { email, password: PASSWORD });
    expect(signedIn.statusCode).toBe(200);
    secrets.push(browser.cookies.get("tessera_session") ?? "", browser.cookies.get("tessera_csrf") ?? "");
    expect((await browser.get("/account")).statusCode).toBe(200);

    expect((await browser.json("POST", "/api/v1/forgot-password", { email })).statusCode).toBe(202);
    const resetLink = linkFrom(outbox, email, "reset_password");
    secrets.push(tokenFrom(resetLink));
    expect((await browser.get(resetLink)).statusCode).toBe(200);
    const reset = await browser.json("POST", "/api/v1/reset-password", {
      token: tokenFrom(resetLink),
      password: newPassword,
    });
    expect(reset.statusCode).toBe(204);
    // A used link in a URL and in a body, answered with an error.
    expect((await browser.get(resetLink)).statusCode).toBe(400);
    expect((await browser.json("POST", "/api/v1/verify-email", { token: tokenFrom(verifyLink) })).statusCode).toBe(400);

    const log = lines.join("");
    // The log is really there: requests, and the outbox naming each email without its text.
    expect(log).toContain('"url":"/reset-password"');
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(8);
      expect(log).not.toContain(secret);
    }
    expect(log).toContain("email kept in the development outbox");
    expect(lines.filter((l) => l.includes('"kind":"reset_password"'))).toHaveLength(1);
  });
});
