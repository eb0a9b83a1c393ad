import { userIdentities, users } from "@tessera/db";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProvider } from "../../src/libraries/federation/providers.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, formFor, linkFrom, tokenFrom } from "../accounts/helpers.ts";
import { followToIssuer, type OAuthStub, startOAuthStub } from "./upstreams.ts";

/** The emailed proof of an existing account for a pending link: works once, and only in the browser that asked. */
let t: AccountsTestApp;
let github: OAuthStub;
let discord: OAuthStub;
const ISSUER = "http://localhost:3000";
const actor = { actorId: null, meta: { ip: undefined, userAgent: "vitest" } };

beforeAll(async () => {
  t = await buildAccountsApp({ ISSUER });
  [github, discord] = await Promise.all([startOAuthStub(), startOAuthStub()]);
  for (const [slug, s, user] of [
    ["github", github, "/user"],
    ["discord", discord, "/users/@me"],
  ] as const) {
    await createProvider(
      t.app.ctx,
      {
        slug,
        type: "oauth2",
        preset: slug,
        clientId: s.clientId,
        clientSecret: s.clientSecret,
        endpoints: {
          authorization: `${s.base}/authorize`,
          token: `${s.base}/token`,
          user: `${s.base}${user}`,
          ...(slug === "github" ? { emails: `${s.base}/user/emails` } : {}),
        },
      },
      actor,
    );
  }
});
afterAll(async () => {
  await Promise.all([github.close(), discord.close()]);
  await t.close();
});

async function signInWith(browser: Browser, slug: string) {
  const start = await browser.get(`/federation/${slug}/start`);
  return browser.get(await followToIssuer(start.headers.location as string, ISSUER));
}

describe("pending link proven by an emailed link", () => {
  it("an account without a password is proven by email; the link works only in the browser that asked, once", async () => {
    // An account made by a Discord sign-in (no password) ...
    discord.user = { id: "900000000000000001", username: "mail", email: "mail@example.com", verified: true };
    expect((await signInWith(new Browser(t.app), "discord")).statusCode).toBe(303);
    const [owner] = await t.app.ctx.db.select().from(users).where(sql`lower(${users.email}) = 'mail@example.com'`);
    const linked = () => t.app.ctx.db.select().from(userIdentities).where(eq(userIdentities.userId, owner!.id));
    // ... then a GitHub identity claiming the same address: nothing linked, the link page offers the email.
    github.user = { id: 777, login: "mail" };
    github.emails = [{ email: "mail@example.com", primary: true, verified: true }];
    const browser = new Browser(t.app);
    const pending = await signInWith(browser, "github");
    expect(pending.headers.location).toBe("/federation/link");
    const page = await browser.get("/federation/link");
    expect(page.body).not.toContain('name="password"');
    const sent = await browser.post("/federation/link/email", formFor(page.body, "/federation/link/email"));
    expect(sent.statusCode).toBe(200);
    expect(sent.body).toContain("We sent a link to mail@example.com");
    const emailed = linkFrom(t.outbox, "mail@example.com", "federation_link");
    const token = tokenFrom(emailed);

    // Opened in another browser (the owner's mail client, or an attacker waiting for the owner to click): refused.
    const elsewhere = new Browser(t.app);
    const confirmPage = await elsewhere.get(emailed);
    expect(confirmPage.statusCode).toBe(200);
    const refused = await elsewhere.post("/federation/link/email", {
      ...formFor(confirmPage.body, "/federation/link/email"),
      token,
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain("FEDERATION_STATE_INVALID");
    expect(refused.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    expect((await linked()).map((i) => i.subject)).toEqual(["900000000000000001"]);

    // In the browser that asked: linked and signed in.
    const mine = await browser.get(emailed);
    const done = await browser.post("/federation/link/email", {
      ...formFor(mine.body, "/federation/link/email"),
      token,
    });
    expect(done.statusCode).toBe(303);
    expect(done.cookies.find((c) => c.name === "tessera_session")?.value).toBeTruthy();
    expect((await linked()).map((i) => i.subject).sort()).toEqual(["777", "900000000000000001"]);
    // Once only.
    const again = await browser.get(emailed);
    expect(again.statusCode).toBe(400);
    expect(again.body).toContain("This link does not work");
  });
});
