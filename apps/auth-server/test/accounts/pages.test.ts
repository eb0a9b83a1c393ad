import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AccountsTestApp, Browser, buildAccountsApp, formFor, linkFrom, PASSWORD } from "./helpers.ts";

let t: AccountsTestApp;
beforeAll(async () => {
  t = await buildAccountsApp();
});
afterAll(async () => t.close());

describe("hosted pages: register → verify → sign out → sign in → account", () => {
  it("walks the whole lifecycle with CSRF-protected forms and 303 redirects", async () => {
    const browser = new Browser(t.app);
    const page = await browser.get("/register");
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["cache-control"]).toBe("no-store");
    expect(page.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    expect(page.headers["referrer-policy"]).toBe("no-referrer");

    const registered = await browser.submit("/register", { email: "Ada@Example.com", password: PASSWORD });
    expect(registered.statusCode).toBe(303);
    expect(registered.headers.location).toBe("/register/check-email");
    expect(browser.cookies.has("tessera_session")).toBe(false);

    const link = linkFrom(t.outbox, "ada@example.com", "verify_email");
    expect(link).toMatch(/^\/verify-email\?token=[A-Za-z0-9_-]{43}$/);
    const confirm = await browser.get(link);
    expect(confirm.statusCode).toBe(200);
    const confirmed = await browser.post("/verify-email", formFor(confirm.body, "/verify-email"));
    expect(confirmed.statusCode).toBe(303);
    // The link confirms the address and signs nobody in: the sign-in form comes next.
    expect(confirmed.headers.location).toBe("/login?notice=verified");
    expect(browser.cookies.has("tessera_session")).toBe(false);
    expect((await browser.get("/login?notice=verified")).body).toContain(
      "Your email address is confirmed. Sign in to continue.",
    );
    const first = await browser.submit("/login", { email: "ada@example.com", password: PASSWORD });
    expect(first.statusCode).toBe(303);
    expect(first.headers.location).toBe("/account");

    const account = await browser.get("/account");
    expect(account.statusCode).toBe(200);
    expect(account.body).toContain("ada@example.com");
    expect(account.body).not.toContain("not verified yet");

    const out = await browser.post("/logout", formFor(account.body, "/logout"));
    // Served by the RP-initiated logout handler (routes/oauth/logout.ts): a signed-out page.
    expect(out.statusCode).toBe(200);
    expect(out.body).toContain("You are signed out");
    expect(browser.cookies.has("tessera_session")).toBe(false);

    const signedIn = await browser.submit("/login", { email: "ada@example.com", password: PASSWORD });
    expect(signedIn.statusCode).toBe(303);
    expect(signedIn.headers.location).toBe("/account");
    expect((await browser.get("/account")).statusCode).toBe(200);
  });
});
