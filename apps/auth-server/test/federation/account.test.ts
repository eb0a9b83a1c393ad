import { userIdentities, users } from "@tessera/db";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProvider } from "../../src/libraries/federation/providers.ts";
import {
  type AccountsTestApp,
  Browser,
  buildAccountsApp,
  createVerifiedAccount,
  formFor,
  PASSWORD,
} from "../accounts/helpers.ts";
import { followToIssuer, type OAuthStub, startOAuthStub } from "./upstreams.ts";

/** Linking more sign-ins from the account page, unlinking, and the last way to sign in. */
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

const identities = (userId: string) =>
  t.app.ctx.db.select().from(userIdentities).where(eq(userIdentities.userId, userId));
const userByEmail = async (email: string) =>
  (await t.app.ctx.db.select().from(users).where(sql`lower(${users.email}) = ${email}`))[0];

describe("account page: linked sign-ins", () => {
  it("links another provider only after the current password, then lists it; unlinks with the password", async () => {
    const browser = await createVerifiedAccount(t, "linker@example.com");
    const user = await userByEmail("linker@example.com");
    const page = await browser.get("/account");
    expect(page.body).toContain("Linked sign-ins");
    const form = formFor(page.body, "/account/identities/link");

    const wrong = await browser.post("/account/identities/link", {
      ...form,
      provider: "github",
      password: "nope nope nope",
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("Your current password is not correct.");

    github.user = { id: 4242, login: "linker" };
    const started = await browser.post("/account/identities/link", { ...form, provider: "github", password: PASSWORD });
    expect(started.statusCode).toBe(303);
    const back = await browser.get(await followToIssuer(started.headers.location as string, ISSUER));
    expect(back.statusCode).toBe(303);
    expect(back.headers.location).toBe("/account/identities?notice=linked");
    const linked = await identities(user!.id);
    expect(linked.map((i) => i.subject)).toEqual(["4242"]);
    const list = await browser.get("/account/identities?notice=linked");
    expect(list.body).toContain("The sign-in was linked to your account.");
    expect(list.body).toContain("GitHub");

    // Another account cannot take the same GitHub identity.
    const other = await createVerifiedAccount(t, "other@example.com");
    const otherPage = await other.get("/account/identities");
    const taken = await other.post("/account/identities/link", {
      ...formFor(otherPage.body, "/account/identities/link"),
      provider: "github",
      password: PASSWORD,
    });
    const refused = await other.get(await followToIssuer(taken.headers.location as string, ISSUER));
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain("IDENTITY_IN_USE");
    expect(await identities((await userByEmail("other@example.com"))!.id)).toEqual([]);

    const unlinkForm = formFor(list.body, "/account/identities/unlink");
    const noPassword = await browser.post("/account/identities/unlink", { ...unlinkForm, password: "wrong password!" });
    expect(noPassword.statusCode).toBe(401);
    expect(await identities(user!.id)).toHaveLength(1);
    const unlinked = await browser.post("/account/identities/unlink", { ...unlinkForm, password: PASSWORD });
    expect(unlinked.statusCode).toBe(303);
    expect(await identities(user!.id)).toEqual([]);
  });

  it("an account without a password cannot unlink its last sign-in (LAST_SIGN_IN_METHOD), but can once it has two", async () => {
    discord.user = { id: "700000000000000001", username: "solo", email: "solo@discord.test", verified: true };
    const browser = new Browser(t.app);
    const start = await browser.get("/federation/discord/start");
    expect((await browser.get(await followToIssuer(start.headers.location as string, ISSUER))).statusCode).toBe(303);
    const user = await userByEmail("solo@discord.test");
    expect(user?.passwordHash).toBeNull();
    const page = await browser.get("/account/identities");
    const refused = await browser.post("/account/identities/unlink", formFor(page.body, "/account/identities/unlink"));
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain("This is the last way to sign in to this account.");
    expect(await identities(user!.id)).toHaveLength(1);

    github.user = { id: 5151, login: "solo" };
    const link = await browser.post("/account/identities/link", {
      ...formFor(page.body, "/account/identities/link"),
      provider: "github",
    });
    expect((await browser.get(await followToIssuer(link.headers.location as string, ISSUER))).statusCode).toBe(303);
    expect(await identities(user!.id)).toHaveLength(2);
    const again = await browser.get("/account/identities");
    const ok = await browser.post("/account/identities/unlink", formFor(again.body, "/account/identities/unlink"));
    expect(ok.statusCode).toBe(303);
    expect(await identities(user!.id)).toHaveLength(1);
  });
});
