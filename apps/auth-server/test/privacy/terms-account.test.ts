import { termsAcceptances, users } from "@tessera/db";
import { asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UserRow } from "../../src/libraries/sessions.ts";
import { Browser, formFor, PASSWORD } from "../accounts/helpers.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser } from "../oauth/helpers.ts";

/**
 * Terms on Tessera's own account pages (#16): a signed-in user whose acceptance is older than the configured versions
 * is sent to the same box as the /authorize interstitial (localized) before any account page shows or any account
 * form acts; accepting records the versions and returns to the page asked for; declining signs out. The export and
 * the account deletion stay reachable without accepting (GDPR).
 */
let t: TestApp;

beforeAll(async () => {
  t = await buildOAuthApp({
    TERMS_VERSION: "2026-12",
    TERMS_URL: "https://tessera.example/terms",
    PRIVACY_VERSION: "p8",
    PRIVACY_URL: "https://tessera.example/privacy",
    THROTTLE_IP_MAX_FAILURES: "100000",
    ACCOUNT_RESPONSE_FLOOR_MS: "0",
  });
});
afterAll(() => t.close());

async function userWithOldAcceptance(): Promise<UserRow> {
  const user = await createUser(t.app, { password: PASSWORD });
  await t.app.ctx.db.insert(termsAcceptances).values({
    userId: user.id,
    termsVersion: "2026-11",
    privacyVersion: "p8",
    context: "register",
    acceptedAt: new Date(t.clock.now().getTime() - 86400_000),
  });
  return user;
}

async function signedIn(user: UserRow): Promise<Browser> {
  const b = new Browser(t.app);
  expect((await b.json("POST", "/api/v1/login", { email: user.email, password: PASSWORD })).statusCode).toBe(200);
  return b;
}

const acceptances = async (userId: string) =>
  (
    await t.app.ctx.db
      .select()
      .from(termsAcceptances)
      .where(eq(termsAcceptances.userId, userId))
      .orderBy(asc(termsAcceptances.acceptedAt))
  ).map((r) => [r.termsVersion, r.privacyVersion, r.context]);

describe("terms on the account pages", () => {
  it("every account page and form goes to the box first; accepting records the versions and returns", async () => {
    const user = await userWithOldAcceptance();
    const b = await signedIn(user);

    for (const [path, back] of [
      ["/account", "/account"],
      ["/account/mfa", "/account/mfa"],
      ["/account/passkeys", "/account/passkeys"],
      ["/account/identities", "/account/identities"],
    ]) {
      const res = await b.get(path!);
      expect(res.statusCode, path).toBe(303);
      expect(res.headers.location).toBe(`/account/terms?return_to=${encodeURIComponent(back!)}`);
    }

    const page = await b.get("/account/terms?return_to=%2Faccount%2Fmfa");
    expect(page.statusCode).toBe(200);
    expect(page.headers["cache-control"]).toBe("no-store");
    expect(page.body).toContain("To keep using your account, accept the updated documents:");
    expect(page.body).toContain('href="https://tessera.example/terms"');
    expect(page.body).toContain("(version 2026-12)");
    expect(page.body).toContain('href="https://tessera.example/privacy"');
    expect(page.body).toContain('href="/account/export"');
    expect(formFor(page.body, "/account/delete")._csrf).toBeTruthy();
    expect(formFor(page.body, "/logout")._csrf).toBeTruthy();

    // A form post (CSRF token and all) does nothing before the terms are accepted.
    const csrf = formFor(page.body, "/account/terms")._csrf!;
    const profile = await b.post("/account/profile", { _csrf: csrf, displayName: "Renamed" });
    expect(profile.statusCode).toBe(303);
    expect(profile.headers.location).toBe("/account/terms?return_to=%2Faccount");
    const [row] = await t.app.ctx.db.select().from(users).where(eq(users.id, user.id));
    expect(row?.displayName).toBe(user.displayName);
    expect(await acceptances(user.id)).toEqual([["2026-11", "p8", "register"]]);

    const accepted = await b.post("/account/terms", { ...formFor(page.body, "/account/terms"), decision: "accept" });
    expect(accepted.statusCode).toBe(303);
    expect(accepted.headers.location).toBe("/account/mfa");
    expect(await acceptances(user.id)).toEqual([
      ["2026-11", "p8", "register"],
      ["2026-12", "p8", "sign_in"],
    ]);
    expect((await b.get("/account")).statusCode).toBe(200);
    // Nothing pending: the box sends the browser on.
    const done = await b.get("/account/terms?return_to=%2Faccount");
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe("/account");
  });

  it("is localized (de, es)", async () => {
    const b = await signedIn(await userWithOldAcceptance());
    const de = await b.get("/account/terms", { "accept-language": "de" });
    expect(de.body).toContain("Um Ihr Konto weiter zu nutzen, akzeptieren Sie die aktualisierten Dokumente:");
    expect(de.body).toContain("Ablehnen und abmelden");
    const es = await b.get("/account/terms", { "accept-language": "es" });
    expect(es.body).toContain("Para seguir usando tu cuenta, acepta los documentos actualizados:");
    expect(es.body).toContain("Sin aceptar, puedes descargar tus datos o eliminar tu cuenta.");
  });

  it("declining signs out", async () => {
    const user = await userWithOldAcceptance();
    const b = await signedIn(user);
    const page = await b.get("/account/terms");
    const out = await b.post("/logout", formFor(page.body, "/logout"));
    expect(out.statusCode).toBe(200);
    const after = await b.get("/account");
    expect(after.statusCode).toBe(303);
    expect(after.headers.location).toBe("/login?return_to=%2Faccount");
    expect(await acceptances(user.id)).toEqual([["2026-11", "p8", "register"]]);
  });

  it("the export and the deletion stay reachable without accepting", async () => {
    const user = await userWithOldAcceptance();
    const b = await signedIn(user);
    const exportPage = await b.get("/account/export");
    expect(exportPage.statusCode).toBe(200);
    const exported = await b.post("/account/export", {
      ...formFor(exportPage.body, "/account/export"),
      confirm_password: PASSWORD,
    });
    expect(exported.statusCode).toBe(200);
    expect(exported.json().schema).toBe("tessera.export/1");

    const page = await b.get("/account/terms");
    const wrong = await b.post("/account/delete", {
      ...formFor(page.body, "/account/delete"),
      currentPassword: "not the password",
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("To keep using your account, accept the updated documents:");
    const deleted = await b.post("/account/delete", {
      ...formFor(page.body, "/account/delete"),
      currentPassword: PASSWORD,
    });
    expect(deleted.statusCode).toBe(303);
    expect(deleted.headers.location).toBe("/login?notice=deleted");
  });
});
