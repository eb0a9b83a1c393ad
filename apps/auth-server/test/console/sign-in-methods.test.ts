import { identityProviders, passkeys, userIdentities } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AccountsTestApp, buildAccountsApp } from "../accounts/helpers.ts";
import { createUser } from "../oauth/helpers.ts";
import { type ConsoleUser, consoleUser } from "./helpers.ts";

/**
 * Issue #14: the console's user page lists how the account signs in — linked upstream identities (provider, when
 * linked, last used) and passkeys (name, created, last used) — read-only, for support and full admins, and never
 * a passkey's public key or credential id.
 */

let t: AccountsTestApp;
let admin: ConsoleUser;
let support: ConsoleUser;
let userId: string;
let bareUserId: string;
const PUBLIC_KEY = "pQECAyYgASFYIPUBLICKEYMARKER";
const CREDENTIAL_ID = "Y3JlZGVudGlhbC1pZC1tYXJrZXI";

beforeAll(async () => {
  t = await buildAccountsApp();
  admin = await consoleUser(t.app, t.clock, { email: "root@tessera.test", level: "admin" });
  support = await consoleUser(t.app, t.clock, { email: "help@tessera.test", level: "support" });
  userId = (await createUser(t.app, { email: "linked@example.com" })).id;
  bareUserId = (await createUser(t.app, { email: "bare@example.com" })).id;
  const [provider] = await t.app.ctx.db
    .insert(identityProviders)
    .values({ slug: "github", kind: "oauth2", preset: "github", displayName: "GitHub" })
    .returning();
  await t.app.ctx.db.insert(userIdentities).values({
    userId,
    providerId: provider!.id,
    subject: "583231",
    email: "octo@users.example",
    linkedAt: new Date("2026-03-04T05:06:07.000Z"),
    lastSignInAt: new Date("2026-04-01T10:00:00.000Z"),
  });
  await t.app.ctx.db.insert(passkeys).values([
    {
      userId,
      credentialId: CREDENTIAL_ID,
      publicKey: PUBLIC_KEY,
      name: "<b>Work laptop</b>",
      createdAt: new Date("2026-02-01T08:00:00.000Z"),
      lastUsedAt: new Date("2026-05-06T07:08:00.000Z"),
    },
    {
      userId,
      credentialId: `${CREDENTIAL_ID}-2`,
      publicKey: `${PUBLIC_KEY}-2`,
      name: "Phone",
      createdAt: new Date("2026-02-02T09:30:00.000Z"),
    },
  ]);
});
afterAll(() => t.close());

describe("the user page lists linked sign-in methods", () => {
  for (const who of ["admin", "support"] as const) {
    it(`${who}: upstream identities with provider and dates, passkeys with name, created and last used`, async () => {
      const browser = (who === "admin" ? admin : support).browser;
      const page = await browser.get(`/admin/users/${userId}`);
      expect(page.statusCode).toBe(200);
      expect(page.headers["cache-control"]).toBe("no-store");
      expect(page.body).toContain('<h2 id="sign-in-methods-title">Sign-in methods</h2>');
      expect(page.body).toContain(
        '<li><strong>GitHub</strong> (<code>github</code>) · octo@users.example · linked <time datetime="2026-03-04T05:06:07.000Z">2026-03-04 05:06</time> · last used <time datetime="2026-04-01T10:00:00.000Z">2026-04-01 10:00</time></li>',
      );
      expect(page.body).toContain(
        '<li><strong>&lt;b&gt;Work laptop&lt;/b&gt;</strong> · passkey · created <time datetime="2026-02-01T08:00:00.000Z">2026-02-01 08:00</time> · last used <time datetime="2026-05-06T07:08:00.000Z">2026-05-06 07:08</time></li>',
      );
      expect(page.body).toContain(
        '<li><strong>Phone</strong> · passkey · created <time datetime="2026-02-02T09:30:00.000Z">2026-02-02 09:30</time> · never used</li>',
      );
      expect(page.body).not.toContain("<b>Work laptop</b>");
      expect(page.body).not.toContain(PUBLIC_KEY);
      expect(page.body).not.toContain(CREDENTIAL_ID);
    });
  }

  it("an account without any says so", async () => {
    const page = await admin.browser.get(`/admin/users/${bareUserId}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<p class="empty">No linked accounts.</p>');
    expect(page.body).toContain('<p class="empty">No passkeys.</p>');
  });
});
