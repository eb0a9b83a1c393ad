import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { errorCatalog } from "../../src/errors/catalog.ts";
import { MESSAGE_KEYS } from "../../src/i18n/en.ts";
import {
  catalogs,
  fromAcceptLanguage,
  LOCALES,
  negotiateLocale,
  translator,
  UnknownMessageError,
} from "../../src/i18n/index.ts";
import { viewsDir } from "../../src/paths.ts";
import { i18nData } from "../../src/routes/pages/render.ts";
import { renderView } from "../../src/views/index.ts";

/** The translated templates: hosted pages, second-factor pages and emails (the console stays English). */
function templates(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".eta")) out.push(relative(viewsDir, path));
    }
  };
  for (const dir of ["pages", "mfa", "emails"]) walk(join(viewsDir, dir));
  return out.sort();
}

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("message catalogs", () => {
  it("every language has exactly the English keys, with the same {placeholders}", () => {
    const english = Object.keys(catalogs.en.messages).sort();
    expect(english.length).toBeGreaterThan(250);
    for (const locale of LOCALES) {
      const keys = Object.keys(catalogs[locale].messages);
      const missing = english.filter((k) => !(k in catalogs[locale].messages));
      const extra = keys.filter((k) => !(k in catalogs.en.messages));
      expect({ locale, missing, extra }).toEqual({ locale, missing: [], extra: [] });
      for (const key of english) {
        const text = catalogs[locale].messages[key] ?? "";
        expect(text.trim(), `${locale}: "${key}"`).not.toBe("");
        expect(placeholders(text), `${locale}: "${key}"`).toEqual(placeholders(key));
      }
    }
  });

  it("every language has a message for every error code of the catalog, and no other", () => {
    const codes = Object.keys(errorCatalog).sort();
    for (const locale of LOCALES) {
      expect(Object.keys(catalogs[locale].errors).sort(), locale).toEqual(codes);
    }
    expect(translator("de").error("INVALID_CREDENTIALS", "x")).toBe("E-Mail-Adresse oder Passwort ist falsch.");
    expect(translator("en").error("INVALID_CREDENTIALS", "The error's own message.")).toBe("The error's own message.");
  });

  it("German and Spanish are translations, not copies of the English", () => {
    for (const locale of ["de", "es"] as const) {
      const same = MESSAGE_KEYS.filter((k) => catalogs[locale].messages[k] === k && /[a-z]{4}/.test(k));
      // Words that are the same in both languages (product terms) are few.
      expect(same.length, `${locale}: ${same.join(" | ")}`).toBeLessThan(8);
    }
  });

  it("a strict translator throws on an unknown key; the page translator falls back to the English text", () => {
    expect(() => translator("de", { strict: true }).t("No such message")).toThrow(UnknownMessageError);
    expect(translator("de").t("No such message")).toBe("No such message");
    expect(translator("de").t("Sign in to continue to {app}", { app: "Shop" })).toBe(
      "Melden Sie sich an, um mit Shop fortzufahren",
    );
  });

  it("formats dates and numbers per locale (English keeps its ISO forms)", () => {
    const at = new Date("2026-11-30T21:45:00Z");
    expect(translator("en").date(at)).toBe("2026-11-30 21:45 UTC");
    expect(translator("en").date(at, "day")).toBe("2026-11-30");
    expect(translator("de").date(at, "day")).toBe("30.11.2026");
    expect(translator("es").date(at, "day")).toMatch(/30 nov 2026/);
    expect(translator("de").t("{n} minutes", { n: 1440 })).toBe("1.440 Minuten");
    expect(translator("en").t("{n} minutes", { n: 1440 })).toBe("1,440 minutes");
  });
});

describe("negotiation", () => {
  it("ui_locales, then the saved preference, then Accept-Language, then English", () => {
    expect(negotiateLocale({ uiLocales: "fr de-CH", saved: "es", acceptLanguage: "es" })).toBe("de");
    expect(negotiateLocale({ uiLocales: "fr", saved: "es", acceptLanguage: "de" })).toBe("es");
    expect(negotiateLocale({ saved: "xx", acceptLanguage: "fr, de;q=0.8" })).toBe("de");
    expect(negotiateLocale({ acceptLanguage: "fr, ja" })).toBe("en");
    expect(negotiateLocale({})).toBe("en");
    expect(fromAcceptLanguage("de;q=0.2, es;q=0.9")).toBe("es");
    expect(fromAcceptLanguage("de;q=0, es;q=0.1")).toBe("es");
    expect(fromAcceptLanguage("*")).toBeUndefined();
  });
});

describe("templates", () => {
  const files = templates();

  it("hold no user-visible English: every text and every alt/aria-label/title comes from the catalog", () => {
    expect(files.length).toBeGreaterThan(30);
    for (const file of files) {
      const source = readFileSync(join(viewsDir, file), "utf8");
      const attrs = [...source.replace(/<%[\s\S]*?%>/g, "").matchAll(/\b(alt|aria-label|title|placeholder)="([^"]*)"/g)]
        .map((m) => m[2] ?? "")
        .filter((value) => /[A-Za-z]/.test(value));
      expect(attrs, file).toEqual([]);
      const text = source
        .replace(/<%[\s\S]*?%>/g, "")
        .replace(/<[^>]*>/g, "")
        .match(/[A-Za-z]{2,}/g);
      expect(text, file).toBeNull();
    }
  });

  it("reference only keys of the catalog (every literal it.t / it.th key)", () => {
    const unknown: string[] = [];
    let count = 0;
    for (const file of files) {
      const source = readFileSync(join(viewsDir, file), "utf8");
      for (const m of source.matchAll(/it\.th?\(\s*(["'])((?:(?!\1).)*)\1/g)) {
        count++;
        if (!(m[2] && m[2] in catalogs.en.messages)) unknown.push(`${file}: ${m[2]}`);
      }
    }
    expect(count).toBeGreaterThan(250);
    expect(unknown).toEqual([]);
  });

  // Every template rendered with a translator that throws on an unknown key, in every language, with data that takes
  // its main branches. A template calling `t` with a key the catalog lacks fails here.
  const user = { email: "ana@example.com", displayName: "Ana", emailVerified: false, locale: null };
  const base = {
    title: "T",
    product: "Tessera",
    csrf: "csrf",
    errors: {},
    values: {},
    minLength: 12,
    continuation: {},
    links: { login: "/login", register: "/register", forgot: "/forgot-password", otp: "/login/otp" },
  };
  const fixtures: Record<string, object[]> = {
    "pages/login": [
      {},
      { branding: { name: "Shop", logoUrl: null }, providers: [{ href: "/x", slug: "g", name: "G" }] },
    ],
    "pages/register": [
      { documents: { terms: { url: "https://t", version: "1" }, privacy: { url: "https://p", version: "2" } } },
    ],
    "pages/account": [
      {
        user,
        sessions: [
          { id: "1", current: true, device: "Chrome", ip: "1.2.3.4", signedInAt: new Date(), lastSeenAt: new Date() },
          { id: "2", current: false, device: "Firefox", ip: "1.2.3.5", signedInAt: new Date(), lastSeenAt: new Date() },
        ],
        authorization: {
          roles: [{ active: true, role: "admin", client_name: "Shop", expires_at: new Date().toISOString() }],
          entitlements: [{ active: true, name: "premium", client_names: null, source: "purchase", expires_at: null }],
        },
        consents: [{ clientId: "c", name: "Shop", grantedOn: new Date(), scopes: "openid" }],
        identities: [{ id: "i", provider: "GitHub", label: "ana", linkedOn: new Date() }],
        linkable: [{ slug: "discord", name: "Discord" }],
        hasPassword: true,
        activity: [{ label: "Signed in", newDevice: true, at: new Date(), device: "Chrome", ip: "1.2.3.4" }],
        formError: "x",
      },
    ],
    "pages/billing": [
      { enabled: false },
      {
        enabled: true,
        portal: true,
        purchases: [
          {
            plan: "P",
            status: "active",
            kind: "k",
            provider: "stripe",
            renews: "r",
            ends: "e",
            receiptUrl: "https://r",
          },
        ],
      },
    ],
    "pages/consent": [{ clientName: "Shop", email: "a@b", scopes: ["Your name", "custom"], params: [["a", "b"]] }],
    "pages/device-confirm": [{ clientName: "TV", email: "a@b", userCode: "BCDF-GHJK", scopes: ["Your name"] }],
    "pages/device": [{ email: "a@b" }],
    "pages/error": [{ heading: "H", message: "M", code: "NOT_FOUND", requestId: "r", href: "/", hrefLabel: "L" }],
    "pages/export": [
      { hasPassword: true, hasTotp: true, formError: "x" },
      { hasPassword: false, hasTotp: false },
    ],
    "pages/federation-identities": [{ identities: [], linkable: [], formError: "x" }],
    "pages/federation-link-email": [{ token: "t" }, {}],
    "pages/federation-link": [
      { providerName: "GitHub", email: "a@b", hasPassword: true, formError: "x" },
      { providerName: "G", email: "a@b" },
    ],
    "pages/forgot-password": [{}],
    "pages/landing": [{ issuer: "http://localhost", docs: "/docs" }],
    "pages/logout": [{ params: [["a", "b"]] }],
    "pages/message": [{ heading: "H", paragraphs: ["p"], action: { href: "/", label: "L" } }],
    "pages/outbox": [
      { messages: [] },
      { messages: [{ subject: "S", to: "a@b", at: "now", kind: "k", links: ["/x"], text: "t" }] },
    ],
    "pages/passkeys-step": [{}],
    "pages/passkeys": [
      { passkeys: [], hasTotp: false },
      {
        passkeys: [{ id: "p", name: "Key", kind: "synced", createdAt: new Date().toISOString(), lastUsedAt: null }],
        hasTotp: true,
        formError: "x",
      },
    ],
    "pages/reset-password": [{ token: "t", formError: "x" }],
    "pages/terms-accept": [
      {
        clientName: "Shop",
        email: "a@b",
        documents: { terms: { version: "2", url: "https://x/t" }, privacy: { version: "3", url: "https://x/p" } },
        params: [["a", "b"]],
      },
      { clientName: "Shop", email: "a@b", documents: { terms: { version: "2", url: "https://x/t" } }, params: [] },
    ],
    "pages/verify-email": [
      { purpose: "change_email", newEmail: "n@b", token: "t" },
      { purpose: "verify", token: "t" },
    ],
    "mfa/manage": [
      { status: { enabled: true, recoveryCodesLeft: 8 }, formError: "x" },
      { status: { enabled: false }, hasPassword: true },
      { status: { enabled: false }, hasPassword: false },
    ],
    "mfa/otp": [{}, { expired: true, formError: "x" }],
    "mfa/recovery-codes": [{ codes: ["abcd-efgh", "jkmn-pqrs"] }],
    "mfa/setup": [{ enrolment: { qrCodeDataUrl: "data:image/png;base64,AA", secret: "ABCDEFGHIJKLMNOP" } }],
    "emails/account": [{ subject: "S", intro: "I", outro: "O", action: { label: "L", url: "https://x" } }],
  };

  it("render in every language with a translator that throws on an unknown key", () => {
    const partials = files.filter((f) => /(^|\/)_|terms-checkbox|layout/.test(f));
    const covered = new Set(Object.keys(fixtures));
    const uncovered = files
      .map((f) => f.replace(/\.eta$/, ""))
      .filter((f) => !covered.has(f) && !partials.includes(`${f}.eta`));
    expect(uncovered).toEqual([]);
    for (const locale of LOCALES) {
      const data = i18nData(translator(locale, { strict: true }));
      for (const [view, variants] of Object.entries(fixtures)) {
        for (const variant of variants) {
          const html = renderView(view, { ...base, ...data, ...variant });
          if (view !== "emails/account") expect(html, `${locale} ${view}`).toContain(`<html lang="${locale}">`);
        }
      }
    }
    // The check has teeth: a template asking for a key the catalog lacks does not render.
    const broken = {
      ...i18nData(translator("de", { strict: true })),
      t: (k: string) => translator("de", { strict: true }).t(`${k}!`),
    };
    expect(() => renderView("pages/login", { ...base, ...broken })).toThrow();
  });
});

describe("route messages", () => {
  it("every title, heading, notice, paragraph and label a page route passes is a catalog key", () => {
    const dir = join(viewsDir, "..", "routes");
    const files = [
      ...readdirSync(join(dir, "pages")).map((f) => join(dir, "pages", f)),
      join(dir, "oauth", "pages.ts"),
      join(dir, "oauth", "device.ts"),
      join(dir, "billing", "pages.ts"),
      join(viewsDir, "..", "libraries", "privacy", "activity.ts"),
    ];
    const unknown: string[] = [];
    let count = 0;
    for (const file of files) {
      const source = readFileSync(file, "utf8");
      const literals = [
        ...source.matchAll(/\b(?:title|text|heading|label|hrefLabel|key): "([^"]+)"/g),
        ...source.matchAll(/^\s+"([A-Z][^"]*[.!?])",?$/gm),
        ...source.matchAll(/\? "([A-Z][^"]+)"\s*:\s*"([A-Z][^"]+)"/g),
        ...source.matchAll(/^\s+[a-z_."]+: "([A-Z][^"]+)",$/gm),
      ];
      for (const m of literals) {
        for (const text of m.slice(1)) {
          if (!text || /^[A-Z_]+$/.test(text) || text.startsWith("/")) continue;
          count++;
          if (!(text in catalogs.en.messages)) unknown.push(`${relative(dir, file)}: ${text}`);
        }
      }
    }
    expect(count).toBeGreaterThan(60);
    expect(unknown).toEqual([]);
  });
});
