import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AccountsTestApp,
  Browser,
  buildAccountsApp,
  createVerifiedAccount,
  PASSWORD,
} from "../accounts/helpers.ts";

// The hosted pages in the user's language: ui_locales, then the saved preference, then Accept-Language, then English.
let t: AccountsTestApp;
beforeAll(async () => {
  t = await buildAccountsApp();
}, 300_000);
afterAll(async () => t?.close());

const heading = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];

describe("language of the hosted pages", () => {
  it("ui_locales=de renders the German sign-in page, also when carried in return_to from /authorize", async () => {
    const browser = new Browser(t.app);
    const page = await browser.get("/login?ui_locales=de", { "accept-language": "es" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-language"]).toBe("de");
    expect(page.body).toContain('<html lang="de">');
    expect(heading(page.body)).toBe("Anmelden");
    expect(page.body).toContain(">Passwort vergessen?</a>");
    expect(page.body).not.toContain("Forgot your password?");

    const returnTo = encodeURIComponent("/authorize?client_id=x&ui_locales=fr%20de&response_type=code");
    const carried = await browser.get(`/login?return_to=${returnTo}`);
    expect(carried.body).toContain('<html lang="de">');
    expect(heading(carried.body)).toBe("Anmelden");
  });

  it("Accept-Language es renders Spanish; an unsupported language falls back to English (same text as before)", async () => {
    const browser = new Browser(t.app);
    const es = await browser.get("/login", { "accept-language": "fr-FR, es;q=0.8, en;q=0.5" });
    expect(es.headers["content-language"]).toBe("es");
    expect(es.body).toContain('<html lang="es">');
    expect(heading(es.body)).toBe("Iniciar sesión");
    expect(es.body).toContain("¿Olvidaste tu contraseña?");

    const fallback = await browser.get("/register", { "accept-language": "fr, ja;q=0.9" });
    expect(fallback.headers["content-language"]).toBe("en");
    expect(fallback.body).toContain('<html lang="en">');
    expect(heading(fallback.body)).toBe("Create your account");
    expect(fallback.body).toContain("At least 8 characters. A few unrelated words make a strong password.");
  });

  it("errors on pages are translated by their code: the form error and the error page", async () => {
    const browser = new Browser(t.app);
    const form = await browser.submit("/login?ui_locales=de", {
      email: "nobody@example.com",
      password: "wrong password",
    });
    expect(form.statusCode).toBe(401);
    expect(form.body).toContain("E-Mail-Adresse oder Passwort ist falsch.");
    expect(form.body).not.toContain("The email or password is incorrect.");

    // An authorization request that cannot go back to its client: the HTML error page, in Spanish, by its code.
    const refused = await browser.get("/authorize?client_id=nobody&response_type=code", { "accept-language": "es" });
    expect(refused.statusCode).toBeGreaterThanOrEqual(400);
    expect(refused.statusCode).toBeLessThan(500);
    expect(refused.body).toContain('<html lang="es">');
    expect(heading(refused.body)).toBe("Esta solicitud de inicio de sesión no puede continuar");
    expect(refused.body).toMatch(/Código de error: invalid_(client|request)/);
    expect(refused.body).not.toContain("Client authentication failed.");
  });

  it("the saved preference wins over Accept-Language, and ui_locales over both; the page saves it", async () => {
    const browser = await createVerifiedAccount(t, "lena@example.com");
    const before = await browser.get("/account", { "accept-language": "es" });
    expect(heading(before.body)).toBe("Tu cuenta");

    const saved = await browser.submit("/account", { displayName: "Lena", locale: "de" }, "/account/profile");
    expect(saved.statusCode).toBe(303);
    const after = await browser.get("/account?notice=profile_saved", { "accept-language": "es" });
    expect(after.headers["content-language"]).toBe("de");
    expect(heading(after.body)).toBe("Ihr Konto");
    expect(after.body).toContain("Ihr Profil wurde gespeichert.");
    expect(after.body).toMatch(/<option value="de" lang="de" selected>Deutsch<\/option>/);

    const asked = await browser.get("/account?ui_locales=es", { "accept-language": "de" });
    expect(heading(asked.body)).toBe("Tu cuenta");

    // An unknown language is refused with a field error, and empty goes back to following the browser.
    const bad = await browser.submit("/account", { displayName: "Lena", locale: "xx" }, "/account/profile");
    expect(bad.statusCode).toBe(400);
    const cleared = await browser.submit("/account", { displayName: "Lena", locale: "" }, "/account/profile");
    expect(cleared.statusCode).toBe(303);
    expect(heading((await browser.get("/account", { "accept-language": "es" })).body)).toBe("Tu cuenta");
  });

  it("emails go out in the saved language", async () => {
    const browser = await createVerifiedAccount(t, "jon@example.com");
    await browser.submit("/account", { displayName: "", locale: "es" }, "/account/profile");
    const changed = await browser.submit(
      "/account",
      { currentPassword: PASSWORD, newPassword: "another long pass phrase" },
      "/account/password",
    );
    expect(changed.statusCode).toBe(303);
    const mail = t.outbox.messages.filter((m) => m.to === "jon@example.com" && m.kind === "password_changed").at(-1);
    expect(mail?.subject).toBe("Tu contraseña de Tessera se ha cambiado");
    expect(mail?.html).toContain('<html lang="es">');
    expect(mail?.text).toContain("Se acaba de cambiar la contraseña de la cuenta de Tessera de jon@example.com.");
  });
});
