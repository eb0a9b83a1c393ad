import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import * as oidc from "openid-client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { build } from "../contract.ts";
import { createUser, registerClient, type TestClient } from "./helpers.ts";

/**
 * The whole flow driven by an unmodified OpenID Connect client library (openid-client v6) against a listening server:
 * discovery → authorize (PKCE S256) → sign in on the hosted form → callback → token (ID token validated by the
 * library) → userinfo → refresh → introspect → revoke → logout. The server runs on the real clock, as in production.
 */
const REDIRECT = "https://rp.example/callback";
const POST_LOGOUT = "https://rp.example/bye";
const PASSWORD = "a perfectly fine passphrase";

let app: FastifyInstance;
let close: () => Promise<void>;
let issuer: string;
let client: TestClient;
let email: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  const database = await createTestDatabase();
  app = await build(testConfig({ ISSUER: issuer }), { database });
  await app.listen({ host: "127.0.0.1", port });
  close = async () => {
    await app.close();
    await database.close();
  };
  client = await registerClient(app, {
    name: "Relying Party",
    redirectUris: [REDIRECT],
    postLogoutRedirectUris: [POST_LOGOUT],
  });
  email = (await createUser(app, { email: "rp-user@example.com", password: PASSWORD, displayName: "Rita" })).email;
});
afterAll(async () => close());

/** A tiny cookie jar: the browser's side of the hosted pages. */
class Browser {
  private cookies = new Map<string, string>();
  async get(url: string) {
    return this.send(url, { method: "GET" });
  }
  async post(url: string, fields: Record<string, string>) {
    return this.send(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  }
  private async send(url: string, init: RequestInit) {
    const response = await fetch(new URL(url, issuer), {
      ...init,
      redirect: "manual",
      headers: { ...(init.headers as Record<string, string>), cookie: this.cookieHeader() },
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const eq = (pair ?? "").indexOf("=");
      const name = (pair ?? "").slice(0, eq).trim();
      const value = (pair ?? "").slice(eq + 1).trim();
      const expired = attributes.some((a) => /max-age=0|expires=thu, 01 jan 1970/i.test(a.trim()));
      if (expired || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return { status: response.status, location: response.headers.get("location"), body: await response.text() };
  }
  private cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

it("works end to end with openid-client", async () => {
  const config = await oidc.discovery(
    new URL(issuer),
    client.clientId,
    { id_token_signed_response_alg: "RS256" },
    oidc.ClientSecretBasic(client.secret),
    { execute: [oidc.allowInsecureRequests] },
  );
  expect(config.serverMetadata().issuer).toBe(issuer);

  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const authorizationUrl = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: "openid profile email",
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });

  // No session yet: /authorize sends the browser to the hosted sign-in page.
  const browser = new Browser();
  const toLogin = await browser.get(authorizationUrl.href);
  expect(toLogin.status).toBe(302);
  const loginUrl = new URL(toLogin.location as string, issuer);
  expect(loginUrl.pathname).toBe("/login");

  // The real hosted form: GET it (CSRF cookie + token), POST it, follow the 303 back to /authorize.
  const form = await browser.get(loginUrl.href);
  expect(form.status).toBe(200);
  const hidden = Object.fromEntries(
    [...form.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [
      m[1] as string,
      (m[2] as string)
        .replace(/&amp;/g, "&")
        .replace(/&#39;/g, "'")
        .replace(/&quot;/g, '"'),
    ]),
  );
  expect(hidden._csrf).toBeTruthy();
  const signedIn = await browser.post("/login", { ...hidden, email, password: PASSWORD });
  expect(signedIn.status).toBe(303);
  const back = await browser.get(new URL(signedIn.location as string, issuer).href);
  expect(back.status).toBe(302);
  const callback = new URL(back.location as string);
  expect(callback.searchParams.get("iss")).toBe(issuer);

  // Callback → token: openid-client checks state, iss (RFC 9207), the ID token's signature, nonce, aud, exp.
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  expect(claims?.email).toBe(email);
  expect(tokens.token_type).toBe("bearer");
  expect(tokens.refresh_token).toMatch(/^tsr_/);
  expect(typeof tokens.session_expires_at).toBe("number");

  const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims?.sub as string);
  expect(userinfo).toEqual({ sub: claims?.sub, email, email_verified: true, name: "Rita" });

  // Refresh (rotation): a new refresh token and a new ID token for the same user.
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token as string);
  expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  expect(refreshed.claims()?.sub).toBe(claims?.sub);

  const introspection = await oidc.tokenIntrospection(config, refreshed.refresh_token as string);
  expect(introspection).toMatchObject({ active: true, client_id: client.clientId, sub: claims?.sub });

  // Revoke the chain: the refresh token stops working.
  await oidc.tokenRevocation(config, refreshed.refresh_token as string);
  await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token as string)).rejects.toMatchObject({
    error: "invalid_grant",
  });

  // RP-initiated logout through the browser: back to the registered URI with the state.
  const endSession = oidc.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token as string,
    post_logout_redirect_uri: POST_LOGOUT,
    state: "bye-state",
  });
  const loggedOut = await browser.get(endSession.href);
  expect(loggedOut.status).toBe(302);
  expect(loggedOut.location).toBe(`${POST_LOGOUT}?state=bye-state`);

  // The session is gone: a silent authorization now fails with login_required.
  const silent = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: "openid",
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: "S256",
    prompt: "none",
    state: "s",
  });
  const after = await browser.get(silent.href);
  expect(new URL(after.location as string).searchParams.get("error")).toBe("login_required");
});
