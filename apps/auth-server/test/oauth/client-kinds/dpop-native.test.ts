import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientRow } from "../../../src/libraries/clients/index.ts";
import type { TestApp } from "../../helpers.ts";
import { buildOAuthApp, createUser, decodeJwt, FORM, form, sessionCookie } from "../helpers.ts";
import { discover, injectFetch, registerPublicClient } from "./helpers.ts";

/**
 * A native game with a loopback redirect (RFC 8252 7.3) on an ephemeral port, driven by oauth4webapi (a third-party
 * OAuth client with its own DPoP implementation): PKCE, DPoP-bound tokens, userinfo with a DPoP proof, refresh.
 */
let t: TestApp;
let as: oauth.AuthorizationServer;
let cookie: string;
let loopback: Server;
let received: Promise<URL>;

/** The native app's loopback listener: resolves with the first callback URL it receives. */
function listen(): Promise<number> {
  let resolve: (url: URL) => void;
  received = new Promise((r) => {
    resolve = r;
  });
  loopback = createServer((request, response) => {
    resolve(new URL(request.url ?? "/", `http://127.0.0.1:${(loopback.address() as AddressInfo).port}`));
    response.end("You can close this window.");
  });
  return new Promise((r) => loopback.listen(0, "127.0.0.1", () => r((loopback.address() as AddressInfo).port)));
}

/** Records the DPoP header of each request oauth4webapi sends, so a test can replay one. */
const sentProofs: string[] = [];
function options(app: TestApp["app"], DPoP?: oauth.DPoPHandle) {
  const fetch = injectFetch(app);
  return {
    [oauth.customFetch]: async (url: string | URL | Request, init?: RequestInit) => {
      const proof = new Headers(init?.headers).get("dpop");
      if (proof) sentProofs.push(proof);
      return fetch(url, init);
    },
    [oauth.allowInsecureRequests]: true,
    ...(DPoP ? { DPoP } : {}),
  } as const;
}

beforeAll(async () => {
  t = await buildOAuthApp();
  as = await discover(t.app);
  cookie = (await sessionCookie(t.app, await createUser(t.app))).cookie;
});
afterAll(async () => {
  loopback?.close();
  await t.close();
});

/** Runs the browser part: /authorize with the user's session, then the redirect to the app's loopback listener. */
async function signIn(client: ClientRow, scope = "openid email offline_access") {
  const port = await listen();
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint as string);
  url.searchParams.set("client_id", client.clientId);
  url.searchParams.set("redirect_uri", redirectUri);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", scope);
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  const authorize = await t.app.inject({ method: "GET", url: `${url.pathname}${url.search}`, headers: { cookie } });
  expect(authorize.statusCode).toBe(302);
  // The browser follows the redirect to the native app's listener (a real HTTP request on the ephemeral port).
  await fetch(authorize.headers.location as string);
  const callback = await received;
  loopback.close();
  return { callback, redirectUri, verifier, state };
}

describe("native app with a loopback redirect and DPoP (oauth4webapi)", () => {
  it("signs in on an ephemeral port, gets DPoP-bound tokens, calls /userinfo and refreshes with proofs", async () => {
    const row = await registerPublicClient(t.app, { redirectUris: ["http://127.0.0.1/callback"], requireDpop: true });
    const client: oauth.Client = { client_id: row.clientId };
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
    const { callback, redirectUri, verifier, state } = await signIn(row);
    expect(callback.port).not.toBe("");
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const exchange = () =>
      oauth.authorizationCodeGrantRequest(
        as,
        client,
        oauth.None(),
        params,
        redirectUri,
        verifier,
        options(t.app, DPoP),
      );
    // requireDpop: the first proof has no server nonce and is answered use_dpop_nonce with one (RFC 9449 8); the
    // library keeps it and the retry carries it.
    const nonceChallenge = await exchange();
    expect(nonceChallenge.status).toBe(400);
    expect(((await nonceChallenge.json()) as { error: string }).error).toBe("use_dpop_nonce");
    const codeResponse = await exchange();
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, codeResponse);
    expect(tokens.token_type).toBe("dpop");
    const jkt = (decodeJwt(tokens.access_token).payload.cnf as { jkt: string }).jkt;
    expect(jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const sub = oauth.getValidatedIdTokenClaims(tokens)?.sub as string;
    const info = await oauth.processUserInfoResponse(
      as,
      client,
      sub,
      await oauth.userInfoRequest(as, client, tokens.access_token, options(t.app, DPoP)),
    );
    expect(info.sub).toBe(sub);

    // The bound access token as a plain bearer token: refused (no downgrade).
    const bearer = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(bearer.statusCode).toBe(401);
    expect(bearer.json().error).toBe("invalid_token");

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(
        as,
        client,
        oauth.None(),
        tokens.refresh_token as string,
        options(t.app, DPoP),
      ),
    );
    expect(refreshed.token_type).toBe("dpop");
    expect((decodeJwt(refreshed.access_token).payload.cnf as { jkt: string }).jkt).toBe(jkt);

    // Attack: the bound refresh token without a proof, and with a proof from another key.
    const stolen = refreshed.refresh_token as string;
    const noProof = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: FORM,
      payload: form({ grant_type: "refresh_token", client_id: row.clientId, refresh_token: stolen }),
    });
    expect(noProof.statusCode).toBe(400);
    expect(noProof.json()).toEqual({
      error: "invalid_dpop_proof",
      error_description: "This client must send a DPoP proof with every token request.",
    });
    const thief = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
    // The thief's library first gets the (public) server nonce, then retries with it: still refused.
    await oauth.refreshTokenGrantRequest(as, client, oauth.None(), stolen, options(t.app, thief));
    const wrongKey = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), stolen, options(t.app, thief));
    expect(wrongKey.status).toBe(400);
    expect(await wrongKey.json()).toEqual({
      error: "invalid_grant",
      error_description: "The refresh token is bound to another DPoP key.",
    });
    // Attack: a replayed proof (same jti) is refused, even from the key's owner.
    const replayed = sentProofs.at(-3) as string;
    const replay = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, dpop: replayed },
      payload: form({ grant_type: "refresh_token", client_id: row.clientId, refresh_token: stolen }),
    });
    expect(replay.statusCode).toBe(400);
    expect(replay.json()).toEqual({
      error: "invalid_dpop_proof",
      error_description: "This DPoP proof was already used.",
    });
    // The legitimate app, with its key, still refreshes: the chain was not rotated nor ended by the attempts.
    const again = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), stolen, options(t.app, DPoP));
    expect(again.status).toBe(200);
  });

  it("a client that does not require DPoP: a bound chain still needs its key; an unbound one stays Bearer", async () => {
    const row = await registerPublicClient(t.app, { redirectUris: ["http://127.0.0.1/callback"] });
    const client: oauth.Client = { client_id: row.clientId };
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("EdDSA"));
    const first = await signIn(row);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(
        as,
        client,
        oauth.None(),
        oauth.validateAuthResponse(as, client, first.callback, first.state),
        first.redirectUri,
        first.verifier,
        options(t.app, DPoP),
      ),
    );
    expect(tokens.token_type).toBe("dpop");
    const noProof = await oauth.refreshTokenGrantRequest(
      as,
      client,
      oauth.None(),
      tokens.refresh_token as string,
      options(t.app),
    );
    expect(noProof.status).toBe(400);
    expect(await noProof.json()).toEqual({
      error: "invalid_dpop_proof",
      error_description: "This refresh token is bound to a DPoP key: send a DPoP proof signed with it.",
    });

    const second = await signIn(row);
    const plain = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(
        as,
        client,
        oauth.None(),
        oauth.validateAuthResponse(as, client, second.callback, second.state),
        second.redirectUri,
        second.verifier,
        options(t.app),
      ),
    );
    expect(plain.token_type).toBe("bearer");
    expect(decodeJwt(plain.access_token).payload.cnf).toBeUndefined();
  });
});
