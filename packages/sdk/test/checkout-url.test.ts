import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createTessera, TesseraConfigError } from "../src/index.ts";

const tessera = createTessera({
  issuer: "https://id.example.com/",
  clientId: "shop",
  clientSecret: "secret",
  appSecret: randomBytes(32).toString("base64"),
  redirectUri: "https://shop.example.com/auth/callback",
  cookies: { secure: true },
});

describe("tessera.checkoutUrl", () => {
  it("points at Tessera's checkout with the plan and an absolute return_to on this app", () => {
    expect(tessera.checkoutUrl("premium", { returnTo: "/premium/thanks?x=1" })).toBe(
      "https://id.example.com/billing/checkout?plan=premium&return_to=https%3A%2F%2Fshop.example.com%2Fpremium%2Fthanks%3Fx%3D1",
    );
    expect(tessera.checkoutUrl("premium")).toBe(
      "https://id.example.com/billing/checkout?plan=premium&return_to=https%3A%2F%2Fshop.example.com%2F",
    );
    expect(tessera.checkoutUrl("pass", { returnTo: "https://game.example.com/", method: "crypto" })).toBe(
      "https://id.example.com/billing/checkout?plan=pass&return_to=https%3A%2F%2Fgame.example.com%2F&method=crypto",
    );
  });

  it("refuses what is not a plan name or an http(s) return address", () => {
    expect(() => tessera.checkoutUrl("Premium&x=1")).toThrow(TesseraConfigError);
    expect(() => tessera.checkoutUrl("premium", { returnTo: "javascript:alert(1)" })).toThrow(TesseraConfigError);
  });
});
