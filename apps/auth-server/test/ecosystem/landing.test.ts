import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "../helpers.ts";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ ISSUER: "https://id.example.com", MAIL_FROM_NAME: "Example ID" });
}, 0);
afterAll(async () => t?.close());

describe("GET /", () => {
  it("is an HTML page saying what this is, with the hosted pages' headers", async () => {
    const res = await t.app.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.headers["content-security-policy"]).toContain("default-src");
    expect(res.body).toContain("<h1>Example ID</h1>");
    expect(res.body).toContain("OpenID Connect identity provider");
    expect(res.body).toContain("<code>https://id.example.com</code>");
    expect(res.body).not.toContain('"code":"NOT_FOUND"');
  });

  it("links to sign in, registration, the account page, discovery and the keys, and each link answers", async () => {
    const res = await t.app.inject({ method: "GET", url: "/" });
    const links = [...res.body.matchAll(/href="([^"]+)"/g)]
      .map((m) => m[1])
      .filter((h) => h?.startsWith("/") && !h.startsWith("/assets/"));
    expect(links).toEqual(
      expect.arrayContaining(["/login", "/register", "/account", "/.well-known/openid-configuration", "/jwks"]),
    );
    for (const href of links) {
      const target = await t.app.inject({ method: "GET", url: href as string });
      // /account redirects a visitor who is not signed in to the sign-in page; everything else answers 200.
      expect([200, 303], `${href} answered ${target.statusCode}`).toContain(target.statusCode);
    }
    // The API documentation (/docs, from the OpenAPI document) is linked, and the loop above checked it answers.
    expect(res.body).toContain('<a href="/docs">API documentation</a>');
  });
});
