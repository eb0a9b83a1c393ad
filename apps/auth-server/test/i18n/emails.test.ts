import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { users } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { Browser, PASSWORD, tokenFrom } from "../accounts/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

/**
 * Every email goes out in the recipient's language (issue #17): the saved `users.locale`, else the language of the
 * request that sends it (ui_locales, Accept-Language), else English. Sent through the real Mailjet driver to a local
 * stub of its Send API, so what is asserted is what would leave the server.
 */
interface Sent {
  to: string;
  subject: string;
  text: string;
  kind: string;
}
let server: Server;
const sent: Sent[] = [];
let t: TestApp;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    req.on("end", () => {
      for (const m of JSON.parse(body).Messages) {
        sent.push({ to: m.To[0].Email, subject: m.Subject, text: m.TextPart, kind: m.CustomID });
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ Messages: [{ Status: "success", To: [{ Email: "x", MessageID: 1 }] }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t = await buildTestApp({
    MAIL_DRIVER: "mailjet",
    MAILJET_API_KEY: "public-key",
    MAILJET_API_SECRET: "private-secret",
    MAILJET_API_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    MAIL_FROM_NAME: "Tessera",
    RATE_LIMIT_ENABLED: "false",
    ACCOUNT_RESPONSE_FLOOR_MS: "0",
    THROTTLE_IP_MAX_FAILURES: "100000",
    THROTTLE_ACCOUNT_FREE_FAILURES: "1000",
    THROTTLE_ACCOUNT_LOCK_THRESHOLD: "3",
  });
});
afterAll(async () => {
  await t?.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** The email of `kind` to `to` (sending is in the background: waits for it). */
async function mail(to: string, kind: string): Promise<Sent> {
  for (let i = 0; i < 100; i++) {
    const found = sent.find((m) => m.to === to && m.kind === kind);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no ${kind} email to ${to}`);
}

const german = { "accept-language": "de-DE,de;q=0.9,en;q=0.5" };
const english = { "accept-language": "en-US,en;q=0.9" };

/** Registers (in `headers`' language), verifies and signs in; optionally saves `locale` as the account's language. */
async function account(email: string, headers: Record<string, string>, locale?: string) {
  const browser = new Browser(t.app);
  expect((await browser.json("POST", "/api/v1/register", { email, password: PASSWORD }, headers)).statusCode).toBe(202);
  const link = (await mail(email, "verify_email")).text.match(/https?:\/\/\S+/)?.[0] ?? "";
  expect((await browser.json("POST", "/api/v1/verify-email", { token: tokenFrom(link) })).statusCode).toBe(200);
  if (locale) await t.app.ctx.db.update(users).set({ locale }).where(eq(users.email, email));
  expect((await browser.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(200);
  return browser;
}

describe("emails in the user's language", () => {
  it("registration: the verification email follows the request's Accept-Language (no saved language yet)", async () => {
    await account("anna@example.de", german);
    const verify = await mail("anna@example.de", "verify_email");
    expect(verify.subject).toBe("Bestätigen Sie Ihre E-Mail-Adresse für Tessera");
    await account("ann@example.com", {});
    expect((await mail("ann@example.com", "verify_email")).subject).toBe("Confirm your email address for Tessera");
  });

  it("registration: ui_locales of the pending authorization request in return_to counts as the request's language", async () => {
    const browser = new Browser(t.app);
    const page = await browser.get("/register?return_to=%2Fauthorize%3Fclient_id%3Dx%26ui_locales%3Des");
    expect(page.statusCode).toBe(200);
    const res = await browser.submit("/register?return_to=%2Fauthorize%3Fclient_id%3Dx%26ui_locales%3Des", {
      email: "ana@example.es",
      password: PASSWORD,
    });
    expect(res.statusCode).toBeLessThan(400);
    expect((await mail("ana@example.es", "verify_email")).subject).toBe("Confirma tu correo electrónico para Tessera");
  });

  it("registering an address that has an account: the notice is in the owner's saved language", async () => {
    await account("bernd@example.de", english, "de");
    await new Browser(t.app).json(
      "POST",
      "/api/v1/register",
      { email: "bernd@example.de", password: "some other long password" },
      english,
    );
    expect((await mail("bernd@example.de", "registration_attempt")).subject).toBe(
      "Jemand hat versucht, mit Ihrer E-Mail-Adresse ein Tessera-Konto zu erstellen",
    );
  });

  it("account lock notice: the saved language wins over the locking request's English", async () => {
    await account("clara@example.de", english, "de");
    const stranger = new Browser(t.app);
    for (let i = 0; i < 3; i++) {
      await stranger.json(
        "POST",
        "/api/v1/login",
        { email: "clara@example.de", password: "wrong password!!" },
        english,
      );
    }
    const notice = await mail("clara@example.de", "account_locked");
    expect(notice.subject).toBe("Anmeldungen bei Ihrem Tessera-Konto sind pausiert");
    expect(notice.text).toContain("Passwort zurücksetzen:");
  });

  it("MFA change notices (on, new recovery codes, off) are in the saved language", async () => {
    const browser = await account("dora@example.de", english, "de");
    const started = await browser.json("POST", "/api/v1/mfa/totp", { password: PASSWORD }, english);
    expect(started.statusCode).toBe(201);
    const secret = started.json().secret as string;
    const code = () => currentCode(secret, t.clock.now());
    expect((await browser.json("POST", "/api/v1/mfa/totp/confirm", { code: code() }, english)).statusCode).toBe(200);
    expect((await mail("dora@example.de", "mfa_enabled")).subject).toBe(
      "Die Bestätigung in zwei Schritten ist an · Tessera",
    );
    t.clock.advance(31);
    expect((await browser.json("POST", "/api/v1/mfa/recovery-codes", { code: code() }, english)).statusCode).toBe(200);
    expect((await mail("dora@example.de", "mfa_recovery_codes")).subject).toBe(
      "Neue Wiederherstellungscodes · Tessera",
    );
    t.clock.advance(31);
    const off = await browser.json("POST", "/api/v1/mfa/totp/disable", { password: PASSWORD, code: code() }, english);
    expect(off.statusCode).toBe(204);
    expect((await mail("dora@example.de", "mfa_disabled")).subject).toBe(
      "Die Bestätigung in zwei Schritten ist aus · Tessera",
    );
  });

  it("account lock notice from the code step (wrong second-factor codes): the owner's saved language", async () => {
    const owner = await account("hanna@example.de", english, "de");
    const started = await owner.json("POST", "/api/v1/mfa/totp", { password: PASSWORD }, english);
    const secret = started.json().secret as string;
    const code = currentCode(secret, t.clock.now());
    expect((await owner.json("POST", "/api/v1/mfa/totp/confirm", { code }, english)).statusCode).toBe(200);
    const other = new Browser(t.app);
    const login = await other.json("POST", "/api/v1/login", { email: "hanna@example.de", password: PASSWORD }, english);
    expect(login.json().error.code).toBe("MFA_REQUIRED");
    const wrong = code === "000000" ? "111111" : "000000";
    for (let i = 0; i < 3; i++) await other.json("POST", "/api/v1/login/otp", { code: wrong }, english);
    const notice = await mail("hanna@example.de", "account_locked");
    expect(notice.subject).toBe("Anmeldungen bei Ihrem Tessera-Konto sind pausiert");
  });

  it("changing the email: the link to the new address and the notice to the old one are in the saved language", async () => {
    const browser = await account("emil@example.de", english, "de");
    const res = await browser.json(
      "POST",
      "/api/v1/me/email",
      { currentPassword: PASSWORD, newEmail: "emil.neu@example.de" },
      english,
    );
    expect(res.statusCode).toBe(202);
    const confirm = await mail("emil.neu@example.de", "change_email");
    expect(confirm.subject).toBe("Bestätigen Sie Ihre neue E-Mail-Adresse für Tessera");
    const link = confirm.text.match(/https?:\/\/\S+/)?.[0] ?? "";
    expect((await browser.json("POST", "/api/v1/verify-email", { token: tokenFrom(link) }, english)).statusCode).toBe(
      200,
    );
    expect((await mail("emil@example.de", "email_changed")).subject).toBe("Ihre Tessera-E-Mail-Adresse wurde geändert");
  });

  it("password reset and change: saved language, else the request's", async () => {
    await account("frida@example.de", english, "de");
    await new Browser(t.app).json("POST", "/api/v1/forgot-password", { email: "frida@example.de" }, english);
    expect((await mail("frida@example.de", "reset_password")).subject).toBe("Setzen Sie Ihr Tessera-Passwort zurück");

    const browser = await account("gerd@example.de", german);
    const changed = await browser.json(
      "POST",
      "/api/v1/me/password",
      { currentPassword: PASSWORD, newPassword: "another horse battery staple" },
      german,
    );
    expect(changed.statusCode).toBe(204);
    expect((await mail("gerd@example.de", "password_changed")).subject).toBe("Ihr Tessera-Passwort wurde geändert");
  });
});
