import { termsAcceptances, users } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AccountsTestApp, Browser, buildAccountsApp, formFor, PASSWORD } from "../accounts/helpers.ts";

/** Terms and privacy acceptance at registration (#16): the box is required when configured, and recorded. */
let t: AccountsTestApp;

beforeAll(async () => {
  t = await buildAccountsApp({
    RATE_LIMIT_REGISTER: "1000/60",
    TERMS_VERSION: "2026-11",
    TERMS_URL: "https://tessera.example/terms",
    PRIVACY_VERSION: "p7",
    PRIVACY_URL: "https://tessera.example/privacy",
  });
});
afterAll(() => t.close());

const userByEmail = async (email: string) =>
  (await t.app.ctx.db.select().from(users).where(eq(users.email, email)))[0] ?? null;

describe("registration with terms configured", () => {
  it("API: refuses without acceptance (no account made) and records the versions with it", async () => {
    const b = new Browser(t.app);
    const refused = await b.json("POST", "/api/v1/register", { email: "terms-api@example.com", password: PASSWORD });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error).toMatchObject({
      code: "TERMS_NOT_ACCEPTED",
      fields: [{ field: "acceptTerms", message: "Accept the terms of service and the privacy notice to continue." }],
    });
    expect(await userByEmail("terms-api@example.com")).toBeNull();
    const ok = await b.json("POST", "/api/v1/register", {
      email: "terms-api@example.com",
      password: PASSWORD,
      acceptTerms: true,
    });
    expect(ok.statusCode).toBe(202);
    const user = await userByEmail("terms-api@example.com");
    const rows = await t.app.ctx.db.select().from(termsAcceptances).where(eq(termsAcceptances.userId, user!.id));
    expect(rows).toEqual([
      expect.objectContaining({
        termsVersion: "2026-11",
        privacyVersion: "p7",
        context: "register",
        acceptedAt: t.clock.now(),
      }),
    ]);
  });

  it("page: shows the box with both documents, and re-shows the form when it is not ticked", async () => {
    const b = new Browser(t.app);
    const page = await b.get("/register");
    expect(page.body).toContain('name="acceptTerms"');
    expect(page.body).toContain('href="https://tessera.example/terms"');
    expect(page.body).toContain('href="https://tessera.example/privacy"');
    const fields = { ...formFor(page.body, "/register"), email: "terms-page@example.com", password: PASSWORD };
    const refused = await b.post("/register", fields);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("Accept the terms of service and the privacy notice to continue.");
    expect(await userByEmail("terms-page@example.com")).toBeNull();
    const ok = await b.post("/register", { ...formFor(refused.body, "/register"), ...fields, acceptTerms: "on" });
    expect(ok.statusCode).toBe(303);
    expect(await userByEmail("terms-page@example.com")).not.toBeNull();
  });
});
