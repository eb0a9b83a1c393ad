import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UserRow } from "../../../src/libraries/sessions.ts";
import type { TestApp } from "../../helpers.ts";
import {
  authorizeQuery,
  buildOAuthApp,
  createUser,
  FORM,
  locationParams,
  pkce,
  redeem,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
} from "../helpers.ts";

let t: TestApp;
let thirdParty: TestClient;
let firstParty: TestClient;
let user: UserRow;
let cookie: string;

beforeAll(async () => {
  t = await buildOAuthApp();
  thirdParty = await registerClient(t.app, { name: "Partner Game", firstParty: false });
  firstParty = await registerClient(t.app, { name: "Own Shop", firstParty: true });
  user = await createUser(t.app);
  cookie = (await sessionCookie(t.app, user)).cookie;
});
afterAll(async () => t.close());

const authorize = (client: TestClient, extra: Record<string, string> = {}, challenge?: string) =>
  t.app.inject({
    method: "GET",
    url: `/authorize?${authorizeQuery(client, extra, challenge)}`,
    headers: { cookie },
  });

/** Submits a hosted form (consent page or account page) as the browser would, with its CSRF token and cookie. */
async function submit(page: LightMyRequestResponse, action: string, extra: Record<string, string>, index = 0) {
  const forms = [...page.body.matchAll(/<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/g)].filter(
    (m) => m[1] === action,
  );
  const formHtml = forms[index]?.[2] ?? "";
  const fields = [...formHtml.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map(
    (m) =>
      [
        m[1],
        m[2]
          ?.replace(/&amp;/g, "&")
          .replace(/&#39;/g, "'")
          .replace(/&quot;/g, '"'),
      ] as [string, string],
  );
  const body = new URLSearchParams(fields);
  for (const [k, v] of Object.entries(extra)) body.set(k, v);
  const setCookie = page.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
  return t.app.inject({
    method: "POST",
    url: action,
    headers: { ...FORM, cookie: setCookie ? `${cookie}; ${setCookie}` : cookie },
    payload: body.toString(),
  });
}

describe("remembered consent", () => {
  it("a third-party app asks once; afterwards prompt=none and id_token_hint work; a wider scope asks again", async () => {
    const first = await authorize(thirdParty, { scope: "openid profile" });
    expect(first.statusCode).toBe(200);
    expect(first.body).toContain("Partner Game wants to access your account");
    expect(locationParams(await authorize(thirdParty, { scope: "openid profile", prompt: "none" })).get("error")).toBe(
      "consent_required",
    );

    const { verifier, challenge } = pkce();
    const page = await authorize(thirdParty, { scope: "openid profile" }, challenge);
    const approved = await submit(page, "/authorize/consent", { decision: "approve" });
    expect(approved.statusCode).toBe(303);
    const tokens = (await redeem(t.app, thirdParty, locationParams(approved).get("code") as string, verifier)).json();

    const silent = await authorize(thirdParty, { scope: "openid profile", prompt: "none" });
    expect(silent.statusCode).toBe(302);
    expect(locationParams(silent).get("code")).toBeTruthy();
    const hinted = await authorize(thirdParty, { scope: "openid", prompt: "none", id_token_hint: tokens.id_token });
    expect(locationParams(hinted).get("code")).toBeTruthy();
    // A scope not approved yet: asked again.
    expect((await authorize(thirdParty, { scope: "openid profile email" })).statusCode).toBe(200);
  });

  it("prompt=consent always asks, for third-party and first-party apps alike", async () => {
    const third = await authorize(thirdParty, { scope: "openid profile", prompt: "consent" });
    expect(third.statusCode).toBe(200);
    expect(third.body).toContain("Partner Game wants to access your account");
    const first = await authorize(firstParty, { prompt: "consent" });
    expect(first.statusCode).toBe(200);
    expect(first.body).toContain("Own Shop wants to access your account");
    // Approving it gives a code (not the consent page again).
    const approved = await submit(first, "/authorize/consent", { decision: "approve" });
    expect(approved.statusCode).toBe(303);
    expect(locationParams(approved).get("code")).toBeTruthy();
    // Without prompt=consent the first-party app does not ask.
    expect((await authorize(firstParty)).statusCode).toBe(302);
  });

  it("the account page lists the apps; removing one ends its refresh tokens for the user and asks again", async () => {
    const { verifier, challenge } = pkce();
    const code = locationParams(await authorize(thirdParty, { scope: "openid profile" }, challenge)).get("code");
    const tokens = (await redeem(t.app, thirdParty, code as string, verifier)).json();
    expect((await refresh(t.app, thirdParty, tokens.refresh_token)).statusCode).toBe(200);
    const again = (
      await redeem(
        t.app,
        thirdParty,
        ...(await (async () => {
          const p = pkce();
          const c = locationParams(await authorize(thirdParty, { scope: "openid profile" }, p.challenge)).get("code");
          return [c as string, p.verifier] as const;
        })()),
      )
    ).json();

    const account = await t.app.inject({ method: "GET", url: "/account", headers: { cookie } });
    expect(account.statusCode).toBe(200);
    expect(account.body).toContain("Apps you allowed");
    expect(account.body).toContain("Partner Game");
    expect(account.body).toContain("Own Shop");
    // Without the CSRF token: refused, nothing revoked.
    const forged = await t.app.inject({
      method: "POST",
      url: "/account/consents/revoke",
      headers: { ...FORM, cookie },
      payload: `clientId=${thirdParty.clientId}`,
    });
    expect(forged.statusCode).toBe(403);
    const stillLive = await refresh(t.app, thirdParty, again.refresh_token);
    expect(stillLive.statusCode).toBe(200);
    const live = stillLive.json().refresh_token as string;

    const index = [...account.body.matchAll(/name="clientId" value="([^"]+)"/g)].findIndex(
      (m) => m[1] === thirdParty.clientId,
    );
    const revoked = await submit(account, "/account/consents/revoke", {}, index);
    expect(revoked.statusCode).toBe(303);
    expect(revoked.headers.location).toBe("/account?notice=consent_revoked");
    // The live (never used) refresh token of the app now fails: revoked, not reused.
    const after = await refresh(t.app, thirdParty, live);
    expect(after.statusCode).toBe(400);
    expect(after.json()).toEqual({ error: "invalid_grant", error_description: "The refresh token has been revoked." });
    expect((await authorize(thirdParty, { scope: "openid profile" })).statusCode).toBe(200);
    // The first-party app's tokens are untouched, and an unknown app is a 404 page.
    const unknown = await submit(account, "/account/consents/revoke", { clientId: "0".repeat(32) }, index);
    expect(unknown.statusCode).toBe(404);
  });
});
