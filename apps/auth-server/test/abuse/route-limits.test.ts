import { auditEvents } from "@tessera/db";
import { and, eq } from "drizzle-orm";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "../helpers.ts";

/**
 * Every credential-taking and token endpoint has its limit: with each RATE_LIMIT_* at 2 per minute, the third
 * request from one IP answers 429 with Retry-After in the route's own format (catalog JSON, readable HTML page, or
 * OAuth `slow_down`), and the limit resets when the window has passed. Requests need not be valid to count: the
 * limit runs before parsing, CSRF and credentials.
 */
let t: TestApp;
const LIMIT = "2/60";

beforeAll(async () => {
  t = await buildTestApp({
    RATE_LIMIT_LOGIN: LIMIT,
    RATE_LIMIT_REGISTER: LIMIT,
    RATE_LIMIT_FORGOT_PASSWORD: LIMIT,
    RATE_LIMIT_RESET_PASSWORD: LIMIT,
    RATE_LIMIT_VERIFY_EMAIL: LIMIT,
    RATE_LIMIT_OTP: LIMIT,
    RATE_LIMIT_MFA: LIMIT,
    RATE_LIMIT_TOKEN: LIMIT,
    RATE_LIMIT_INTROSPECT: LIMIT,
    RATE_LIMIT_REVOKE: LIMIT,
    RATE_LIMIT_DEVICE_AUTHORIZATION: LIMIT,
    RATE_LIMIT_DEVICE: LIMIT,
    RATE_LIMIT_GUEST: LIMIT,
  });
});
afterAll(() => t.close());

type Format = "json" | "html" | "oauth";
const ROUTES: [string, Format][] = [
  ["/api/v1/login", "json"],
  ["/api/v1/register", "json"],
  ["/api/v1/forgot-password", "json"],
  ["/api/v1/reset-password", "json"],
  ["/api/v1/verify-email", "json"],
  ["/api/v1/login/otp", "json"],
  ["/api/v1/mfa/totp", "json"],
  ["/login", "html"],
  ["/register", "html"],
  ["/forgot-password", "html"],
  ["/reset-password", "html"],
  ["/verify-email", "html"],
  ["/login/otp", "html"],
  ["/account/mfa/setup", "html"],
  ["/token", "oauth"],
  ["/introspect", "oauth"],
  ["/revoke", "oauth"],
  ["/device_authorization", "oauth"],
  ["/device", "html"],
  ["/api/v1/guest", "json"],
];

let n = 0;
function post(url: string, ip: string, format: Format): Promise<LightMyRequestResponse> {
  const json = format === "json";
  return t.app.inject({
    method: "POST",
    url,
    remoteAddress: ip,
    headers: { "content-type": json ? "application/json" : "application/x-www-form-urlencoded" },
    payload: json ? "{}" : "a=b",
  });
}

describe("per-route limits on the real endpoints", () => {
  it.each(ROUTES)("POST %s: third request is 429 (%s), then resets", async (url, format) => {
    const ip = `192.0.2.${++n}`;
    // /login and /api/v1/login share the "login" limit, and so on: each route gets its own IP here.
    for (let i = 0; i < 2; i++) expect((await post(url, ip, format)).statusCode).not.toBe(429);
    const limited = await post(url, ip, format);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers["retry-after"]).toBe("60");
    if (format === "json") {
      expect(limited.json().error).toMatchObject({ code: "RATE_LIMITED", status: 429 });
    } else if (format === "oauth") {
      expect(limited.json()).toEqual({ error: "slow_down", error_description: "Too many requests. Try again later." });
    } else {
      expect(limited.headers["content-type"]).toMatch(/^text\/html/);
      expect(limited.body).toContain("Too many attempts");
      expect(limited.body).toContain("Too many requests. Try again later.");
    }
    // Another IP is not limited.
    expect((await post(url, `198.51.100.${n}`, format)).statusCode).not.toBe(429);
  });

  it("every limit resets when its window has passed", async () => {
    // Each route's IP is still limited just before the window ends, and free right after.
    t.clock.advance(59);
    for (const [i, [url, format]] of ROUTES.entries()) {
      expect([url, (await post(url, `192.0.2.${i + 1}`, format)).statusCode]).toEqual([url, 429]);
    }
    t.clock.advance(1);
    for (const [i, [url, format]] of ROUTES.entries()) {
      expect([url, (await post(url, `192.0.2.${i + 1}`, format)).statusCode]).not.toEqual([url, 429]);
    }
  });

  it("audits an exceeded limit once per client and minute, not once per refused request", async () => {
    const ip = "192.0.2.150";
    for (let i = 0; i < 6; i++) await post("/api/v1/forgot-password", ip, "json");
    const rows = () =>
      t.app.ctx.db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.event, "rate_limit.exceeded"), eq(auditEvents.ip, ip)));
    await expect.poll(async () => (await rows()).length).toBe(1);
    expect((await rows())[0]).toMatchObject({ outcome: "failure", details: { limit: "forgot_password" } });
  });

  it("the hosted form and the JSON API share the sign-in limit", async () => {
    const ip = "192.0.2.200";
    expect((await post("/login", ip, "html")).statusCode).not.toBe(429);
    expect((await post("/api/v1/login", ip, "json")).statusCode).not.toBe(429);
    expect((await post("/login", ip, "html")).statusCode).toBe(429);
  });
});
