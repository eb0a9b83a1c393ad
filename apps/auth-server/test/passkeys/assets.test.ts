import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publicDir } from "../../src/paths.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

/**
 * The browser side under the hosted pages' CSP (script-src 'self', no inline script): the copy of the
 * @simplewebauthn/browser bundle served from /assets is the installed package's file, byte for byte, and the sign-in
 * page loads it and public/passkeys.js as same-origin files, with the autofill hint on the email field.
 */
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

describe("passkey assets", () => {
  it("the served bundle is the installed @simplewebauthn/browser, unchanged", () => {
    // The package's exports name only its module entry, so the bundle is read from where pnpm links the package.
    const pkgDir = join(fileURLToPath(new URL("../..", import.meta.url)), "node_modules/@simplewebauthn/browser");
    const installed = readFileSync(join(pkgDir, "dist/bundle/index.umd.min.js"));
    expect(installed.subarray(0, 40).toString()).toContain("@simplewebauthn/browser@");
    expect(readFileSync(join(publicDir, "simplewebauthn-browser.js")).equals(installed)).toBe(true);
  });

  it("serves the scripts as JavaScript from /assets", async () => {
    for (const file of ["simplewebauthn-browser.js", "passkeys.js"]) {
      const res = await t.app.inject({ method: "GET", url: `/assets/${file}` });
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    }
  });

  it("the sign-in page: autofill hint, same-origin scripts only, CSP script-src 'self'", async () => {
    const res = await t.app.inject({ method: "GET", url: "/login" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(res.body).toMatch(/<input id="email" name="email" type="email"[^>]* autocomplete="username webauthn"/);
    const scripts = [...res.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => m[1]!.trim()).sort()).toEqual(
      ['src="/assets/passkeys.js"', 'src="/assets/simplewebauthn-browser.js"', 'src="/assets/tessera.js"'].sort(),
    );
    expect(scripts.every((m) => m[2] === "")).toBe(true);
    // The no-JS form is still there and the passkey button stays hidden until the script shows it.
    expect(res.body).toContain('<form method="post" action="/login" novalidate>');
    expect(res.body).toMatch(/<button type="button" id="passkey-sign-in"[^>]* hidden>/);
  });
});
