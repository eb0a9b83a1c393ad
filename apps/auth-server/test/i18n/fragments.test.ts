import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matchMessage, translator } from "../../src/i18n/index.ts";
import { i18nData } from "../../src/routes/pages/render.ts";
import { renderView } from "../../src/views/index.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, createVerifiedAccount } from "../accounts/helpers.ts";

/**
 * The fragments of hosted pages that code builds in English with values in them (device names, password rules with a
 * number, purchase words) are shown in the page's language (issue #17).
 */
let t: AccountsTestApp;
beforeAll(async () => {
  t = await buildAccountsApp({ RATE_LIMIT_ENABLED: "false" });
});
afterAll(async () => t?.close());

describe("filled-in English messages", () => {
  it("are matched to their catalog key with their values (whole numbers as numbers)", () => {
    expect(matchMessage("Use at least 12 characters.")).toEqual({
      key: "Use at least {n} characters.",
      params: { n: 12 },
    });
    expect(matchMessage("Firefox on macOS")).toEqual({
      key: "{browser} on {os}",
      params: { browser: "Firefox", os: "macOS" },
    });
    expect(matchMessage("curl/8.5.0")).toBeUndefined();
    expect(matchMessage("x".repeat(2000))).toBeUndefined();
  });
});

describe("hosted pages in German", () => {
  it("the account page names devices in German (sessions and activity)", async () => {
    const browser = await createVerifiedAccount(t, "geraet@example.de");
    const page = await browser.get("/account", { "accept-language": "de" });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Chrome unter Linux<span class="badge">');
    expect(page.body).not.toContain("Chrome on Linux");
  });

  it("a password rule with a number is in German on the register page", async () => {
    const browser = new Browser(t.app);
    const res = await browser.submit("/register?ui_locales=de", { email: "kurz@example.de", password: "kurz" });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain("Verwenden Sie mindestens 8 Zeichen.");
    expect(res.body).not.toContain("Use at least");
  });

  it("the billing page's purchase words and dates are in German", () => {
    const html = renderView("pages/billing", {
      title: "Billing",
      product: "Tessera",
      csrf: "c",
      errors: {},
      values: {},
      continuation: {},
      ...i18nData(translator("de", { strict: true })),
      enabled: true,
      portal: false,
      purchases: [
        {
          plan: "Premium",
          status: "payment overdue",
          kind: "Subscription",
          provider: "Card (Stripe)",
          renews: "2026-12-31",
          ends: null,
          receiptUrl: null,
        },
      ],
    });
    expect(html).toContain('Premium <span class="badge">Zahlung überfällig</span>');
    expect(html).toContain("Abonnement · Karte (Stripe) · ");
    expect(html).toContain("31.12.2026");
    expect(html).not.toMatch(/Subscription|Card \(Stripe\)|2026-12-31/);
  });
});
