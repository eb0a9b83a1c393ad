import { clients } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.ts";
import { build } from "../contract.ts";
import {
  type AccountsTestApp,
  Browser,
  buildAccountsApp,
  createVerifiedAccount,
  decode,
  formFor,
  linkFrom,
  PASSWORD,
} from "./helpers.ts";

let t: AccountsTestApp;
beforeAll(async () => {
  t = await buildAccountsApp({ RATE_LIMIT_ENABLED: "false" });
  await t.app.ctx.db.insert(clients).values([
    { clientId: "shop", name: "Corner <Shop>", logoUrl: "https://cdn.example.com/shop.png", clientSecretHash: "x" },
    { clientId: "old", name: "Retired App", clientSecretHash: "x", disabledAt: new Date() },
    { clientId: "sneaky", name: "Sneaky", logoUrl: "javascript:alert(1)", clientSecretHash: "x" },
  ]);
});
afterAll(async () => t.close());

let n = 0;
const uniqueEmail = (prefix = "page") => `${prefix}${++n}@example.com`;

function expectHtmlPage(res: { statusCode: number; headers: Record<string, unknown> }, status: number) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
  expect(res.headers["cache-control"]).toBe("no-store");
  expect(String(res.headers["content-security-policy"])).toContain("frame-ancestors 'none'");
  expect(String(res.headers["content-security-policy"])).toContain("default-src 'self'");
  expect(res.headers["x-content-type-options"]).toBe("nosniff");
  expect(res.headers["referrer-policy"]).toBe("no-referrer");
}

describe("every page", () => {
  it("sends the security headers, no inline script or style, and works without JavaScript", async () => {
    const browser = await createVerifiedAccount(t, uniqueEmail());
    for (const url of ["/login?prompt=login", "/register", "/forgot-password", "/register/check-email", "/account"]) {
      const res = await browser.get(url);
      expectHtmlPage(res, 200);
      // No inline script or style: a script only as a same-origin file under /assets (CSP script-src 'self'), as the
      // passkey sign-in's progressive enhancement (#15) is.
      expect(res.body).not.toMatch(/<script(?![^>]*\ssrc="\/assets\/[\w.-]+\.js")|\sstyle=|\son\w+=/i);
      expect(res.body).toContain('<link rel="stylesheet" href="/assets/tessera.css">');
      expect(res.body).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
      expect(res.body).toContain('<html lang="en">');
    }
  });

  it("serves the stylesheet from /assets and nothing else from there", async () => {
    const css = await t.app.inject({ method: "GET", url: "/assets/tessera.css" });
    expect(css.statusCode).toBe(200);
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(css.headers["cache-control"]).toBe("public, max-age=3600");
    const etag = String(css.headers.etag);
    const cached = await t.app.inject({
      method: "GET",
      url: "/assets/tessera.css",
      headers: { "if-none-match": etag },
    });
    expect(cached.statusCode).toBe(304);
    for (const url of ["/assets/nope.css", "/assets/..%2F..%2Fapp.ts", "/assets/%2e%2e/index.ts"]) {
      expect((await t.app.inject({ method: "GET", url })).statusCode).toBe(404);
    }
  });
});

describe("CSRF protection", () => {
  const forms: [string, string, Record<string, string>][] = [
    ["/login", "/login", { email: "a@example.com", password: PASSWORD }],
    ["/register", "/register", { email: "a@example.com", password: PASSWORD }],
    ["/forgot-password", "/forgot-password", { email: "a@example.com" }],
    ["/login", "/reset-password", { token: "x", password: PASSWORD }],
    ["/login", "/verify-email", { token: "x" }],
  ];

  it("refuses a form post without a token, with a wrong token, or without the cookie", async () => {
    for (const [page, action, fields] of forms) {
      const browser = new Browser(t.app);
      await browser.get(page);
      const missing = await browser.post(action, fields);
      expectHtmlPage(missing, 403);
      expect(missing.body).toContain("The form expired or was not sent from this site.");
      expect(missing.body).toContain("CSRF_INVALID");
      const wrong = await browser.post(action, { ...fields, _csrf: "not-a-token" });
      expect(wrong.statusCode).toBe(403);
      // A real token from another browser does not match this browser's cookie.
      const other = new Browser(t.app);
      const otherPage = await other.get("/login?prompt=login");
      const foreign = formFor(otherPage.body, "/login")._csrf!;
      expect((await browser.post(action, { ...fields, _csrf: foreign })).statusCode).toBe(403);
      // The right token without the secret cookie.
      const own = formFor((await browser.get("/login?prompt=login")).body, "/login")._csrf!;
      const noCookie = await t.app.inject({
        method: "POST",
        url: action,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        payload: new URLSearchParams({ ...fields, _csrf: own }).toString(),
      });
      expect(noCookie.statusCode).toBe(403);
    }
  });

  it("protects every account form", async () => {
    const browser = await createVerifiedAccount(t, uniqueEmail());
    for (const action of [
      "/account/profile",
      "/account/password",
      "/account/email",
      "/account/delete",
      "/account/sessions/end",
      "/account/sessions/end-others",
      "/account/resend-verification",
      "/logout",
    ]) {
      const res = await browser.post(action, { currentPassword: PASSWORD, displayName: "x" });
      expect(res.statusCode, action).toBe(403);
    }
    expect((await browser.get("/account")).statusCode).toBe(200);
  });

  it("sets the CSRF secret as an HttpOnly, SameSite=Lax cookie", async () => {
    const res = await new Browser(t.app).get("/login");
    const cookie = res.cookies.find((c) => c.name === "tessera_csrf");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" });
  });
});

describe("GET/POST /login", () => {
  it("shows errors next to the field in plain words and keeps the entered email", async () => {
    const browser = new Browser(t.app);
    const empty = await browser.submit("/login", { email: "", password: "" });
    expectHtmlPage(empty, 400);
    expect(empty.body).toContain(
      '<span class="error-text" id="email-error">Enter an email address like name@example.com.</span>',
    );
    expect(empty.body).toContain('aria-invalid="true" aria-describedby="email-error"');
    const wrong = await browser.submit("/login", { email: "who@example.com", password: "wrong password" });
    expectHtmlPage(wrong, 401);
    expect(wrong.body).toContain("The email or password is incorrect.");
    expect(wrong.body).toContain('value="who@example.com"');
    expect(wrong.body).not.toContain("wrong password");
  });

  it("escapes what it echoes", async () => {
    const browser = new Browser(t.app);
    const res = await browser.submit("/register", {
      email: '"><script>alert(1)</script>@x',
      password: "short",
      displayName: "<img src=x onerror=alert(1)>",
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain("<script>alert(1)</script>");
    expect(res.body).not.toContain("<img src=x");
    expect(res.body).toContain("&lt;img src=x onerror=alert(1)&gt;");
  });

  it("continues to a same-origin return_to after sign-in, and to /account for anything else", async () => {
    const email = uniqueEmail();
    await createVerifiedAccount(t, email);
    const cases: [string, string][] = [
      [
        "/authorize?client_id=shop&response_type=code&state=%2F%2F",
        "/authorize?client_id=shop&response_type=code&state=%2F%2F",
      ],
      ["/account", "/account"],
      ["//evil.example/x", "/account"],
      ["/\\evil.example", "/account"],
      ["https://evil.example/", "/account"],
      ["javascript:alert(1)", "/account"],
      ["/%2F%2Fevil.example", "/account"],
      ["/%5Cevil.example", "/account"],
      ["/\tx", "/account"],
      ["authorize", "/account"],
    ];
    for (const [returnTo, expected] of cases) {
      const browser = new Browser(t.app);
      const url = `/login?${new URLSearchParams({ return_to: returnTo, client_id: "shop" })}`;
      const res = await browser.submit(url, { email, password: PASSWORD }, "/login");
      expect(res.statusCode, returnTo).toBe(303);
      expect(res.headers.location, returnTo).toBe(expected);
    }
  });

  it("with a session, GET /login continues at once unless prompt=login asks for the form", async () => {
    const browser = await createVerifiedAccount(t, uniqueEmail());
    const again = await browser.get("/login?return_to=%2Fauthorize%3Fclient_id%3Dshop&client_id=shop");
    expect(again.statusCode).toBe(303);
    expect(again.headers.location).toBe("/authorize?client_id=shop");
    const forced = await browser.get("/login?return_to=%2Fauthorize%3Fclient_id%3Dshop&client_id=shop&prompt=login");
    expectHtmlPage(forced, 200);
    expect(formFor(forced.body, "/login")).toMatchObject({ return_to: "/authorize?client_id=shop", client_id: "shop" });
  });

  it("shows a registered, enabled client's name and logo, escaped; nothing for unknown or disabled clients", async () => {
    const branded = await new Browser(t.app).get("/login?client_id=shop");
    expect(branded.body).toContain("Sign in to continue to Corner &lt;Shop&gt;");
    expect(branded.body).toContain('<img src="https://cdn.example.com/shop.png" alt="">');
    const fromAuthorize = await new Browser(t.app).get(
      "/register?return_to=%2Fauthorize%3Fclient_id%3Dshop%26scope%3Dopenid",
    );
    expect(fromAuthorize.body).toContain("Create your account to continue to Corner &lt;Shop&gt;");
    for (const id of ["old", "nobody", "x".repeat(300), "%00"]) {
      const res = await new Browser(t.app).get(`/login?client_id=${id}`);
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain("<h1>Sign in</h1>");
    }
    const sneaky = await new Browser(t.app).get("/login?client_id=sneaky");
    expect(sneaky.body).toContain("Sign in to continue to Sneaky");
    expect(sneaky.body).not.toContain("javascript:");
  });

  it("never answers 500 to odd queries and bodies", async () => {
    const browser = new Browser(t.app);
    for (const url of [
      "/login?return_to=a&return_to=b&client_id=x&client_id=y",
      "/login?return_to=%E0%A4%A",
      `/login?return_to=/${"a".repeat(5000)}`,
      "/register?client_id[]=x",
      "/verify-email",
      "/verify-email?token[]=x",
      "/reset-password?token=",
      "/forgot-password?email=%00",
    ]) {
      const res = await browser.get(url);
      expect(res.statusCode, url).toBeLessThan(500);
    }
    const page = await browser.get("/login");
    const csrf = formFor(page.body, "/login");
    const big = await browser.post("/login", { ...csrf, email: "a@example.com", password: "p".repeat(1024 * 1024) });
    expectHtmlPage(big, 413);
    expect(big.body).toContain("PAYLOAD_TOO_LARGE");
    const xml = await browser.post("/login", {}, { "content-type": "application/xml" });
    expect(xml.statusCode).toBe(415);
    const repeated = await browser.post("/login", csrf, {}).then(() =>
      t.app.inject({
        method: "POST",
        url: "/login",
        headers: { cookie: browser.cookieHeader(), "content-type": "application/x-www-form-urlencoded" },
        payload: `_csrf=${encodeURIComponent(csrf._csrf!)}&email=a@example.com&email=b@example.com&password=x`,
      }),
    );
    expect(repeated.statusCode).toBe(400);
    const unicode = await browser.submit("/login", { email: "ürsula@exämple.de", password: PASSWORD });
    expect(unicode.statusCode).toBe(400);
    expect(unicode.body).toContain("Enter an email address like name@example.com.");
    const longEmail = await browser.submit("/login", { email: `${"a".repeat(300)}@example.com`, password: PASSWORD });
    expect(longEmail.statusCode).toBe(400);
    expect(longEmail.body).toContain("This email address is too long.");
  });
});

describe("GET/POST /register", () => {
  it("answers the same page for a new and an existing email, and continues to the app after verification", async () => {
    const existing = uniqueEmail("exists");
    await createVerifiedAccount(t, existing);
    const fresh = uniqueEmail("fresh");
    const continuation = "return_to=%2Fauthorize%3Fclient_id%3Dshop&client_id=shop";
    const a = await new Browser(t.app).submit(
      `/register?${continuation}`,
      { email: fresh, password: PASSWORD },
      "/register",
    );
    const b = await new Browser(t.app).submit(
      `/register?${continuation}`,
      { email: existing, password: "not the password!" },
      "/register",
    );
    expect(a.statusCode).toBe(303);
    expect(b.statusCode).toBe(303);
    expect(a.headers.location).toBe(b.headers.location);
    expect(a.headers.location).toBe(`/register/check-email?${continuation}`);
    expect(a.cookies.map((c) => c.name)).toEqual(b.cookies.map((c) => c.name));

    const link = linkFrom(t.outbox, fresh, "verify_email");
    expect(link).toContain("return_to=%2Fauthorize%3Fclient_id%3Dshop");
    const browser = new Browser(t.app);
    const confirm = await browser.get(link);
    expect(confirm.body).toContain("Confirm your email address");
    const done = await browser.post("/verify-email", formFor(confirm.body, "/verify-email"));
    expect(done.statusCode).toBe(303);
    // No session from the link: the sign-in form, keeping the continuation, then the app.
    expect(done.headers.location).toBe(`/login?${continuation}&notice=verified`);
    expect(browser.cookies.has("tessera_session")).toBe(false);
    const signedIn = await browser.submit(
      done.headers.location as string,
      { email: fresh, password: PASSWORD },
      "/login",
    );
    expect(signedIn.statusCode).toBe(303);
    expect(signedIn.headers.location).toBe("/authorize?client_id=shop");
  });

  it("a verification link continues a browser already signed in as its user, and signs no other browser in", async () => {
    const email = uniqueEmail("early");
    const browser = new Browser(t.app);
    await browser.json("POST", "/api/v1/register", { email, password: PASSWORD });
    // ALLOW_UNVERIFIED_LOGIN (default true): signed in before confirming.
    expect((await browser.submit("/login", { email, password: PASSWORD })).statusCode).toBe(303);
    const before = browser.cookies.get("tessera_session");
    const link = linkFrom(t.outbox, email, "verify_email");
    const done = await browser.post("/verify-email", formFor((await browser.get(link)).body, "/verify-email"));
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe("/account?notice=verified");
    expect(done.headers["set-cookie"]).toBeUndefined();
    expect(browser.cookies.get("tessera_session")).toBe(before);
  });

  it("signs an existing user in when the password is right", async () => {
    const email = uniqueEmail();
    await createVerifiedAccount(t, email);
    const browser = new Browser(t.app);
    const res = await browser.submit("/register", { email, password: PASSWORD });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/account");
    expect(browser.cookies.has("tessera_session")).toBe(true);
  });

  it("shows the password policy problem next to the field", async () => {
    const res = await new Browser(t.app).submit("/register", { email: uniqueEmail(), password: "password123" });
    expectHtmlPage(res, 400);
    expect(res.body).toContain(
      '<span class="error-text" id="password-error">This password is too common and easy to guess. Choose another one.</span>',
    );
  });
});

describe("email links", () => {
  it("GET shows a confirmation and never uses the token; bad links get a readable error page", async () => {
    const email = uniqueEmail();
    await new Browser(t.app).json("POST", "/api/v1/register", { email, password: PASSWORD });
    const link = linkFrom(t.outbox, email, "verify_email");
    for (let i = 0; i < 3; i++) expect((await new Browser(t.app).get(link)).statusCode).toBe(200);
    const bad = await new Browser(t.app).get("/verify-email?token=nope");
    expectHtmlPage(bad, 400);
    expect(bad.body).toContain("This link is invalid or has expired.");
    const browser = new Browser(t.app);
    const page = await browser.get(link);
    expect((await browser.post("/verify-email", formFor(page.body, "/verify-email"))).statusCode).toBe(303);
    const used = await new Browser(t.app).get(link);
    expect(used.statusCode).toBe(400);
  });

  it("forgot → reset → sign in, with the same answer for unknown emails", async () => {
    const email = uniqueEmail();
    const signedIn = await createVerifiedAccount(t, email);
    const known = await new Browser(t.app).submit("/forgot-password", { email });
    const unknown = await new Browser(t.app).submit("/forgot-password", { email: uniqueEmail("ghost") });
    expect(known.statusCode).toBe(303);
    expect(unknown.statusCode).toBe(303);
    expect(known.headers.location).toBe("/forgot-password/sent");
    expect(unknown.headers.location).toBe("/forgot-password/sent");

    const browser = new Browser(t.app);
    const link = linkFrom(t.outbox, email, "reset_password");
    const page = await browser.get(link);
    expectHtmlPage(page, 200);
    const fields = formFor(page.body, "/reset-password");
    const weak = await browser.post("/reset-password", { ...fields, password: "abc" });
    expect(weak.statusCode).toBe(400);
    expect(weak.body).toContain("Use at least 8 characters.");
    const done = await browser.post("/reset-password", { ...fields, password: "fresh passphrase 9" });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe("/login?notice=password_reset");
    expect((await signedIn.get("/account")).statusCode).toBe(303);
    const login = await browser.submit("/login", { email, password: "fresh passphrase 9" });
    expect(login.headers.location).toBe("/account");
    expect((await new Browser(t.app).get(link)).statusCode).toBe(400);
  });
});

describe("forgot password from a client app", () => {
  it("keeps the app's branding and continues to it after the reset and sign-in", async () => {
    const email = uniqueEmail("returning");
    await createVerifiedAccount(t, email);
    const browser = new Browser(t.app);
    const login = await browser.get("/login?return_to=%2Fauthorize%3Fclient_id%3Dshop&client_id=shop");
    const forgotHref = decode(login.body.match(/<a href="(\/forgot-password[^"]*)">Forgot your password\?<\/a>/)![1]!);
    expect(forgotHref).toBe("/forgot-password?return_to=%2Fauthorize%3Fclient_id%3Dshop&client_id=shop");
    const forgot = await browser.get(forgotHref);
    expect(forgot.body).toContain("Corner &lt;Shop&gt;");
    const sent = await browser.post("/forgot-password", { ...formFor(forgot.body, "/forgot-password"), email });
    expect(sent.headers.location).toBe(
      "/forgot-password/sent?return_to=%2Fauthorize%3Fclient_id%3Dshop&client_id=shop",
    );
    const link = linkFrom(t.outbox, email, "reset_password");
    expect(link).toContain("&return_to=%2Fauthorize%3Fclient_id%3Dshop&client_id=shop");
    const reset = await browser.get(link);
    expect(reset.body).toContain("Corner &lt;Shop&gt;");
    const done = await browser.post("/reset-password", {
      ...formFor(reset.body, "/reset-password"),
      password: "returning passphrase 5",
    });
    expect(done.headers.location).toBe(
      "/login?return_to=%2Fauthorize%3Fclient_id%3Dshop&client_id=shop&notice=password_reset",
    );
    const page = await browser.get(done.headers.location as string);
    expect(page.body).toContain("Your password was changed. Sign in with your new password.");
    const signedIn = await browser.post("/login", {
      ...formFor(page.body, "/login"),
      email,
      password: "returning passphrase 5",
    });
    expect(signedIn.headers.location).toBe("/authorize?client_id=shop");
  });
});

describe("/account", () => {
  it("sends signed-out visitors to the sign-in page and back", async () => {
    const res = await new Browser(t.app).get("/account");
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/login?return_to=%2Faccount");
  });

  it("shows the unverified banner, the sessions with device and IP, and works every form", async () => {
    const email = uniqueEmail();
    const browser = new Browser(t.app);
    await browser.json("POST", "/api/v1/register", { email, password: PASSWORD });
    await browser.submit("/login", { email, password: PASSWORD });
    const phone = new Browser(
      t.app,
      "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36",
    );
    await phone.submit("/login", { email, password: PASSWORD });

    let page = await browser.get("/account");
    expect(page.body).toContain("Your email address is not verified yet.");
    expect(page.body).toContain('Chrome on Linux<span class="badge">This device</span>');
    expect(page.body).toContain("Chrome on Android");
    expect(page.body).toContain("IP 127.0.0.1");

    const resend = await browser.post(
      "/account/resend-verification",
      formFor(page.body, "/account/resend-verification"),
    );
    expect(resend.headers.location).toBe("/account?notice=verification_sent");

    const profile = await browser.post("/account/profile", {
      ...formFor(page.body, "/account/profile"),
      displayName: "Ada",
    });
    expect(profile.headers.location).toBe("/account?notice=profile_saved");
    page = await browser.get("/account?notice=profile_saved");
    expect(page.body).toContain("Your profile was saved.");
    expect(page.body).toContain('value="Ada"');

    const badPassword = await browser.post("/account/password", {
      ...formFor(page.body, "/account/password"),
      currentPassword: "wrong one",
      newPassword: "new passphrase 77",
    });
    expectHtmlPage(badPassword, 401);
    expect(badPassword.body).toContain(
      '<span class="error-text" id="password-current-error">Your current password is not correct.</span>',
    );

    const badEmail = await browser.post("/account/email", {
      ...formFor(page.body, "/account/email"),
      currentPassword: PASSWORD,
      newEmail: "nope",
    });
    expect(badEmail.statusCode).toBe(400);
    expect(badEmail.body).toContain('id="newEmail-error"');
    expect(badEmail.body).toContain('value="nope"');

    const phonePage = await phone.get("/account");
    const phoneId = [...phonePage.body.matchAll(/name="sessionId" value="([^"]+)"/g)].map((m) => m[1]);
    expect(phoneId).toHaveLength(2);
    const others = await browser.post(
      "/account/sessions/end-others",
      formFor(page.body, "/account/sessions/end-others"),
    );
    expect(others.headers.location).toBe("/account?notice=others_ended");
    expect((await phone.get("/account")).statusCode).toBe(303);

    const changed = await browser.post("/account/password", {
      ...formFor(page.body, "/account/password"),
      currentPassword: PASSWORD,
      newPassword: "new passphrase 77",
    });
    expect(changed.headers.location).toBe("/account?notice=password_changed");

    page = await browser.get("/account");
    const own = page.body.match(/name="sessionId" value="([^"]+)"/)![1]!;
    const end = await browser.post("/account/sessions/end", {
      ...formFor(page.body, "/account/sessions/end"),
      sessionId: own,
    });
    expect(end.statusCode).toBe(303);
    expect(end.headers.location).toBe("/login?notice=signed_out");
    expect(browser.cookies.has("tessera_session")).toBe(false);
  });

  it("ending another user's session is refused on the page", async () => {
    const mallory = await createVerifiedAccount(t, uniqueEmail("mallory"));
    const alice = await createVerifiedAccount(t, uniqueEmail("alice"));
    const aliceSession = (await alice.get("/account")).body.match(/name="sessionId" value="([^"]+)"/)![1]!;
    const page = await mallory.get("/account");
    const res = await mallory.post("/account/sessions/end", {
      ...formFor(page.body, "/account/sessions/end"),
      sessionId: aliceSession,
    });
    expect(res.statusCode).toBe(404);
    expect(res.body).toContain("That session does not exist or has already ended.");
    expect((await alice.get("/account")).statusCode).toBe(200);
  });

  it("deletes the account with the current password", async () => {
    const email = uniqueEmail();
    const browser = await createVerifiedAccount(t, email);
    const page = await browser.get("/account");
    const wrong = await browser.post("/account/delete", {
      ...formFor(page.body, "/account/delete"),
      currentPassword: "x",
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('id="delete-current-error"');
    const res = await browser.post("/account/delete", {
      ...formFor(page.body, "/account/delete"),
      currentPassword: PASSWORD,
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/login?notice=deleted");
    expect(browser.cookies.has("tessera_session")).toBe(false);
    const login = await new Browser(t.app).submit("/login", { email, password: PASSWORD });
    expect(login.statusCode).toBe(401);
  });
});

describe("/dev/outbox", () => {
  it("lists the emails with relative links outside production", async () => {
    const email = uniqueEmail("outbox");
    await new Browser(t.app).json("POST", "/api/v1/register", { email, password: PASSWORD });
    const res = await t.app.inject({ method: "GET", url: "/dev/outbox" });
    expectHtmlPage(res, 200);
    expect(res.body).toContain(`To ${email}`);
    expect(res.body).toMatch(/<a href="\/verify-email\?token=[A-Za-z0-9_-]{43}">/);
    expect((await t.app.inject({ method: "GET", url: "/dev/outbox", remoteAddress: "::1" })).statusCode).toBe(200);
  });

  it("answers only the loopback interface (it holds every reset link)", async () => {
    for (const remoteAddress of ["203.0.113.9", "10.0.0.2", "::ffff:192.0.2.1", "2001:db8::1"]) {
      const res = await t.app.inject({ method: "GET", url: "/dev/outbox", remoteAddress });
      expectHtmlPage(res, 404);
      expect(res.body).not.toContain("verify-email?token=");
    }
  });

  it("does not exist in production (where cookies are __Host- and Secure, and form posts are rate limited)", async () => {
    const config = loadConfig({
      NODE_ENV: "production",
      TESSERA_MASTER_KEY: "ab".repeat(32),
      ISSUER: "https://id.example.com",
      DATABASE_URL: "postgres://unused@127.0.0.1:1/unused",
      MAIL_DRIVER: "mailjet",
      MAILJET_API_KEY: "key",
      MAILJET_API_SECRET: "secret",
      LOG_LEVEL: "silent",
      RATE_LIMIT_LOGIN: "2/60",
    });
    const database = await createTestDatabase();
    const app = await build(config, { database });
    try {
      const res = await app.inject({ method: "GET", url: "/dev/outbox" });
      expect(res.statusCode).toBe(404);
      const login = await app.inject({ method: "GET", url: "/login" });
      expect(login.statusCode).toBe(200);
      // Over https the cookies are Secure and host-only (__Host- prefix).
      const csrf = login.cookies.find((c) => c.name === "__Host-tessera_csrf");
      expect(csrf).toMatchObject({ secure: true, httpOnly: true, path: "/" });
      expect(String(login.headers["strict-transport-security"])).toContain("max-age=31536000");

      const browser = new Browser(app);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push(
          (await browser.submit("/login", { email: "x@example.com", password: "wrong password" })).statusCode,
        );
      }
      expect(statuses).toEqual([401, 401, 429]);
    } finally {
      await app.close();
      await database.close();
    }
  });
});
