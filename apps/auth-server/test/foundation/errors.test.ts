import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AppError,
  type ErrorCode,
  errorCatalog,
  OAuthError,
  OAuthPageError,
  toOAuthError,
} from "../../src/errors/index.ts";
import { toAppError } from "../../src/http/errors.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

/** One error model: OAuth errors are catalog entries, and one translation maps the rest onto them. */
describe("the catalog's OAuth entries", () => {
  it("OAuthError takes its default status from the catalog and stays an AppError", () => {
    expect(new OAuthError("invalid_request", "x").status).toBe(400);
    expect(new OAuthError("invalid_client", "x").status).toBe(401);
    expect(new OAuthError("invalid_token", "x").status).toBe(401);
    expect(new OAuthError("invalid_grant", "x").status).toBe(400);
    const error = new OAuthError("invalid_grant", "Gone.", 400, { a: "1" }).withCode("REFRESH_ROTATED_CONCURRENTLY");
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({
      code: "invalid_grant",
      error: "invalid_grant",
      description: "Gone.",
      message: "Gone.",
    });
    const copy = error.withHeaders({ b: "2" });
    expect(copy.headers).toEqual({ a: "1", b: "2" });
    expect(copy.tesseraCode).toBe("REFRESH_ROTATED_CONCURRENTLY");
    expect(new OAuthPageError("invalid_client", "Unknown.").status).toBe(400);
  });

  it("toOAuthError: catalog entries with an OAuth name keep status, message and headers; the rest are 400 invalid_request", () => {
    const mapped: Partial<Record<ErrorCode, [string, number]>> = {
      RATE_LIMITED: ["slow_down", 429],
      INTERNAL_ERROR: ["server_error", 500],
      DATABASE_UNAVAILABLE: ["temporarily_unavailable", 503],
      SHUTTING_DOWN: ["temporarily_unavailable", 503],
    };
    for (const code of Object.keys(errorCatalog) as ErrorCode[]) {
      if (code === code.toLowerCase()) continue;
      const translated = toOAuthError(new AppError(code, undefined, undefined, { "retry-after": "7" }));
      const [error, status] = mapped[code] ?? ["invalid_request", 400];
      expect([code, translated.error, translated.status]).toEqual([code, error, status]);
      expect(translated.description).toBe(errorCatalog[code].message);
      expect(translated.headers).toEqual({ "retry-after": "7" });
    }
    const own = new OAuthError("invalid_scope", "No.");
    expect(toOAuthError(own)).toBe(own);
  });
});

describe("toAppError", () => {
  it("maps framework codes by own keys only: an error whose code is an Object.prototype name is INTERNAL_ERROR", () => {
    const odd = Object.assign(new Error("odd"), { code: "constructor" });
    expect(toAppError(odd).code).toBe("INTERNAL_ERROR");
    const tooLarge = Object.assign(new Error("big"), { code: "FST_ERR_CTP_BODY_TOO_LARGE" });
    expect(toAppError(tooLarge).code).toBe("PAYLOAD_TOO_LARGE");
  });
});

describe("wire formats", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  }, 0);
  afterAll(async () => t?.close(), 0);

  it("OAuth JSON: a framework error on /token is 400 invalid_request, never cached", async () => {
    const response = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { "content-type": "application/xml" },
      payload: "<grant_type>refresh_token</grant_type>",
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: "invalid_request",
      error_description: "This content type is not accepted here.",
    });
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(response.headers.pragma).toBe("no-cache");
  });

  it("OAuth JSON: a wrong method is 405 invalid_request with Allow", async () => {
    const response = await t.app.inject({ method: "DELETE", url: "/token" });
    expect(response.statusCode).toBe(405);
    // OPTIONS answers CORS preflights (SPAs, #13).
    expect(response.headers.allow).toBe("POST, OPTIONS");
    expect(response.json()).toEqual({
      error: "invalid_request",
      error_description: "DELETE is not allowed here; use POST.",
    });
    expect(response.headers["cache-control"]).toBe("no-store");
  });

  it("catalog JSON: unknown paths answer NOT_FOUND with the request id", async () => {
    const response = await t.app.inject({ method: "GET", url: "/nowhere", headers: { "x-request-id": "req-1" } });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      error: { code: "NOT_FOUND", message: "Nothing is here.", status: 404, requestId: "req-1" },
    });
  });
});
