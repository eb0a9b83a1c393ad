import { auditEvents, passkeys, userIdentities, users } from "@tessera/db";
import { desc, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProvider } from "../../src/libraries/federation/providers.ts";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import {
  type AccountsTestApp,
  Browser,
  buildAccountsApp,
  createVerifiedAccount,
  PASSWORD,
} from "../accounts/helpers.ts";
import { assert, createCredential, type SoftCredential } from "../passkeys/authenticator.ts";
import { followToIssuer, type OidcUpstream, startOidcUpstream } from "./upstreams.ts";

/**
 * A pending link (an upstream identity whose email has an account) proven with a passkey of that account: a WebAuthn
 * assertion over a challenge made for this pending link, by one of the account's own keys, with user verification.
 * Another user's key, a replayed or another flow's challenge, and an expired pending link link nothing.
 */
let t: AccountsTestApp;
let upstream: OidcUpstream;
const ISSUER = "http://localhost:3000";
const ORIGIN = ISSUER;
const actor = { actorId: null, meta: { ip: undefined, userAgent: "vitest" } };
const meta = { ip: "127.0.0.1", userAgent: "vitest" };

beforeAll(async () => {
  t = await buildAccountsApp({ ISSUER, RATE_LIMIT_LOGIN: "1000/60", RATE_LIMIT_MFA: "1000/60" });
  upstream = await startOidcUpstream(`${ISSUER}/federation/acme/callback`);
  await createProvider(
    t.app.ctx,
    {
      slug: "acme",
      type: "oidc",
      issuer: upstream.issuer,
      clientId: upstream.clientId,
      clientSecret: upstream.clientSecret,
    },
    actor,
  );
});
afterAll(async () => {
  await upstream.close();
  await t.close();
});

const csrfFrom = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
const userByEmail = async (email: string) =>
  (await t.app.ctx.db.select().from(users).where(sql`lower(${users.email}) = ${email}`))[0]!;
const subjectsOf = async (userId: string) =>
  (await t.app.ctx.db.select().from(userIdentities).where(eq(userIdentities.userId, userId))).map((i) => i.subject);

async function auditsOf(event: string) {
  return t.app.ctx.db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.event, event))
    .orderBy(desc(auditEvents.at), desc(auditEvents.id));
}

/** A verified account with a password and one passkey (added through the two registration requests). */
async function accountWithPasskey(email: string): Promise<{ id: string; key: SoftCredential }> {
  const b = await createVerifiedAccount(t, email);
  const _csrf = csrfFrom((await b.get("/account/passkeys")).body);
  const options = await b.json("POST", "/api/v1/passkeys/registration/options", { _csrf, password: PASSWORD });
  expect(options.statusCode).toBe(200);
  const { credential, key } = createCredential(options.json(), ORIGIN);
  expect((await b.json("POST", "/api/v1/passkeys/registration", { _csrf, credential })).statusCode).toBe(201);
  return { id: (await userByEmail(email)).id, key };
}

/** A new browser signs in upstream as `subject` claiming `email`: it ends on the pending-link page; returns its token. */
async function pendingFor(subject: string, email: string, browser = new Browser(t.app)) {
  upstream.as(subject, { email, email_verified: true });
  const start = await browser.get("/federation/acme/start");
  const back = await browser.get(await followToIssuer(start.headers.location as string, ISSUER));
  expect(back.headers.location).toBe("/federation/link");
  const page = await browser.get("/federation/link");
  expect(page.statusCode).toBe(200);
  return { browser, page, _csrf: csrfFrom(page.body) };
}

async function linkOptions(browser: Browser, _csrf: string) {
  const res = await browser.json("POST", "/federation/link/passkey/options", { _csrf });
  expect(res.statusCode).toBe(200);
  return res.json() as { challenge: string; userVerification: string; allowCredentials: Array<{ id: string }> };
}

async function currentAmr(browser: Browser) {
  const res = await browser.json("GET", "/api/v1/me/sessions");
  expect(res.statusCode).toBe(200);
  return (res.json() as { sessions: Array<{ current: boolean; amr: string[] }> }).sessions.find((s) => s.current)?.amr;
}

describe("pending link proven with a passkey", () => {
  it("links the identity and signs in; a passkey with UV stands for the account's second step, as in passkey sign-in", async () => {
    const owner = await accountWithPasskey("pk-owner@example.com");
    // The account also has an authenticator app: the password proof would stop at the code step, the passkey does not.
    const user = await userByEmail("pk-owner@example.com");
    const { secret } = await beginTotpEnrolment(t.app.ctx, meta, user);
    await confirmTotpEnrolment(t.app.ctx, meta, { userId: owner.id, code: currentCode(secret, t.clock.now()) });

    const { browser, page, _csrf } = await pendingFor("pk-sub", "pk-owner@example.com");
    expect(page.body).toContain('id="passkey-link"');
    expect(page.body).toContain('src="/assets/simplewebauthn-browser.js"');
    expect(await subjectsOf(owner.id)).toEqual([]);

    // Without the page's CSRF token, nothing starts.
    const noCsrf = await browser.json("POST", "/federation/link/passkey/options", {});
    expect(noCsrf.statusCode).toBe(403);
    const options = await linkOptions(browser, _csrf);
    expect(options.userVerification).toBe("required");
    expect(options.allowCredentials.map((c) => c.id)).toEqual([owner.key.id]);

    const done = await browser.json("POST", "/federation/link/passkey", {
      _csrf,
      credential: assert(owner.key, options.challenge, ORIGIN),
    });
    expect(done.statusCode).toBe(200);
    expect(done.json()).toEqual({ redirect: "/account" });
    expect(done.cookies.find((c) => c.name === "tessera_session")?.value).toBeTruthy();
    expect(browser.cookies.has("tessera_fed_link")).toBe(false);
    expect(await subjectsOf(owner.id)).toEqual(["pk-sub"]);
    expect(await currentAmr(browser)).toEqual(["hwk", "user", "mfa", "fed", "acme"]);
    const [linked] = await auditsOf("user.identity_linked");
    expect(linked).toMatchObject({ userId: owner.id, details: { provider: "acme", proof: "passkey" } });
    const [signedIn] = await auditsOf("user.signed_in");
    expect(signedIn?.userId).toBe(owner.id);

    // The pending link is spent: a second proof with a fresh assertion is refused.
    const again = await browser.json("POST", "/federation/link/passkey/options", { _csrf });
    expect(again.statusCode).toBe(400);
    expect(again.json().error.code).toBe("FEDERATION_STATE_INVALID");
  });

  it("another user's passkey is refused (401 PASSKEY_INVALID, audited other_user), nothing linked, no session", async () => {
    const owner = await accountWithPasskey("pk-victim@example.com");
    const other = await accountWithPasskey("pk-other@example.com");
    const { browser, _csrf } = await pendingFor("pk-victim-sub", "pk-victim@example.com");
    const options = await linkOptions(browser, _csrf);
    expect(options.allowCredentials.map((c) => c.id)).toEqual([owner.key.id]);

    const refused = await browser.json("POST", "/federation/link/passkey", {
      _csrf,
      credential: assert(other.key, options.challenge, ORIGIN),
    });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.code).toBe("PASSKEY_INVALID");
    expect(refused.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    expect(await subjectsOf(owner.id)).toEqual([]);
    expect(await subjectsOf(other.id)).toEqual([]);
    const [audited] = await auditsOf("passkey.assertion_refused");
    expect(audited).toMatchObject({ userId: owner.id, details: { reason: "other_user", purpose: "federation_link" } });

    // Without user verification the owner's own key is refused too.
    const noUv = await browser.json("POST", "/federation/link/passkey", {
      _csrf,
      credential: assert(owner.key, (await linkOptions(browser, _csrf)).challenge, ORIGIN, { uv: false }),
    });
    expect(noUv.statusCode).toBe(401);
    expect(noUv.json().error.code).toBe("PASSKEY_INVALID");
    expect(await subjectsOf(owner.id)).toEqual([]);

    // The pending link is still there for the owner's own key.
    const mine = await browser.json("POST", "/federation/link/passkey", {
      _csrf,
      credential: assert(owner.key, (await linkOptions(browser, _csrf)).challenge, ORIGIN),
    });
    expect(mine.statusCode).toBe(200);
    expect(await subjectsOf(owner.id)).toEqual(["pk-victim-sub"]);
  });

  it("a replayed challenge, or a challenge of another flow, is refused (401 PASSKEY_CHALLENGE_EXPIRED), nothing linked", async () => {
    const owner = await accountWithPasskey("pk-replay@example.com");
    const first = await pendingFor("pk-replay-1", "pk-replay@example.com");
    const options = await linkOptions(first.browser, first._csrf);
    const ceremony = first.browser.cookies.get("tessera_webauthn") ?? "";
    expect(ceremony).not.toBe("");
    const credential = assert(owner.key, options.challenge, ORIGIN);
    expect(
      (await first.browser.json("POST", "/federation/link/passkey", { _csrf: first._csrf, credential })).statusCode,
    ).toBe(200);
    expect(await subjectsOf(owner.id)).toEqual(["pk-replay-1"]);

    // A second pending link for the account; the spent ceremony and its signed answer are sent again.
    const second = await pendingFor("pk-replay-2", "pk-replay@example.com");
    second.browser.cookies.set("tessera_webauthn", ceremony);
    const replayed = await second.browser.json("POST", "/federation/link/passkey", { _csrf: second._csrf, credential });
    expect(replayed.statusCode).toBe(401);
    expect(replayed.json().error.code).toBe("PASSKEY_CHALLENGE_EXPIRED");

    // A passkey sign-in's challenge (another purpose) signed by the owner's key does not prove the pending link.
    const signIn = await second.browser.json("POST", "/api/v1/passkeys/sign-in/options", { _csrf: second._csrf });
    expect(signIn.statusCode).toBe(200);
    const crossed = await second.browser.json("POST", "/federation/link/passkey", {
      _csrf: second._csrf,
      credential: assert(owner.key, signIn.json().challenge, ORIGIN),
    });
    expect(crossed.statusCode).toBe(401);
    expect(crossed.json().error.code).toBe("PASSKEY_CHALLENGE_EXPIRED");
    // ... nor does the pending link's challenge sign anyone in through the passkey sign-in.
    const linkChallenge = await linkOptions(second.browser, second._csrf);
    const viaSignIn = await second.browser.json("POST", "/api/v1/passkeys/sign-in", {
      _csrf: second._csrf,
      credential: assert(owner.key, linkChallenge.challenge, ORIGIN),
    });
    expect(viaSignIn.statusCode).toBe(401);
    expect(viaSignIn.json().error.code).toBe("PASSKEY_CHALLENGE_EXPIRED");
    expect(viaSignIn.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    expect(await subjectsOf(owner.id)).toEqual(["pk-replay-1"]);
  });

  it("an expired pending link is refused (400 FEDERATION_STATE_INVALID) even with a live challenge, nothing linked", async () => {
    const owner = await accountWithPasskey("pk-late@example.com");
    const { browser, _csrf } = await pendingFor("pk-late-sub", "pk-late@example.com");
    t.clock.advance(850); // the pending link lives 900 s, a challenge 300 s
    const options = await linkOptions(browser, _csrf);
    t.clock.advance(60);
    const late = await browser.json("POST", "/federation/link/passkey", {
      _csrf,
      credential: assert(owner.key, options.challenge, ORIGIN),
    });
    expect(late.statusCode).toBe(400);
    expect(late.json().error.code).toBe("FEDERATION_STATE_INVALID");
    expect(late.cookies.find((c) => c.name === "tessera_session")).toBeUndefined();
    expect(await subjectsOf(owner.id)).toEqual([]);
    // Refused before the assertion was checked: the key's counter did not move.
    const [row] = await t.app.ctx.db.select().from(passkeys).where(eq(passkeys.credentialId, owner.key.id));
    expect(row?.counter).toBe(0);
    const reopened = await browser.json("POST", "/federation/link/passkey/options", { _csrf });
    expect(reopened.statusCode).toBe(400);
    expect(reopened.json().error.code).toBe("FEDERATION_STATE_INVALID");
  });

  it("a challenge made for one account's pending link does not prove another account's (FEDERATION_STATE_INVALID)", async () => {
    const mine = await accountWithPasskey("pk-mine@example.com");
    const theirs = await accountWithPasskey("pk-theirs@example.com");
    // The browser starts a passkey proof for its own account's pending link, then holds a pending link for another
    // account (a second upstream sign-in in the same browser replaces the pending-link cookie).
    const first = await pendingFor("pk-mine-sub", "pk-mine@example.com");
    const options = await linkOptions(first.browser, first._csrf);
    const second = await pendingFor("pk-theirs-sub", "pk-theirs@example.com", first.browser);
    const crossed = await second.browser.json("POST", "/federation/link/passkey", {
      _csrf: second._csrf,
      credential: assert(mine.key, options.challenge, ORIGIN),
    });
    expect(crossed.statusCode).toBe(400);
    expect(crossed.json().error.code).toBe("FEDERATION_STATE_INVALID");
    expect(await subjectsOf(theirs.id)).toEqual([]);
    expect(await subjectsOf(mine.id)).toEqual([]);
  });

  it("the link page offers no passkey to an account without one", async () => {
    await createVerifiedAccount(t, "pk-none@example.com");
    const { browser, page, _csrf } = await pendingFor("pk-none-sub", "pk-none@example.com");
    expect(page.body).not.toContain('id="passkey-link"');
    const res = await browser.json("POST", "/federation/link/passkey/options", { _csrf });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe("PASSKEY_NOT_FOUND");
  });
});
