import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEVICE_GRANT, signedInBrowser } from "../../grants/helpers.ts";
import type { TestApp } from "../../helpers.ts";
import {
  basic,
  buildOAuthApp,
  createUser,
  decodeJwt,
  FORM,
  form,
  getCode,
  REDIRECT,
  registerClient,
  sessionCookie,
  type TestClient,
} from "../helpers.ts";
import { discover, injectFetch, registerPublicClient } from "./helpers.ts";

/**
 * DPoP on the server side (RFC 9449), with oauth4webapi's DPoP implementation as the client: `cnf.jkt` at
 * /introspect (6.2), DPoP challenges at /userinfo (7.1), server nonces at /token (8), and DPoP-bound tokens from the
 * device and client_credentials grants.
 */
let t: TestApp;
let as: oauth.AuthorizationServer;
let web: TestClient;
let cookie: string;

function options(DPoP?: oauth.DPoPHandle) {
  return {
    [oauth.customFetch]: injectFetch(t.app),
    [oauth.allowInsecureRequests]: true,
    ...(DPoP ? { DPoP } : {}),
  } as const;
}

/** Building the app and migrating its database can take minutes on a loaded CI machine. */
const BUILD_TIMEOUT_MS = 180_000;

beforeAll(async () => {
  t = await buildOAuthApp();
  as = await discover(t.app);
  web = await registerClient(t.app, { grantTypes: ["authorization_code", "refresh_token", "client_credentials"] });
  cookie = (await sessionCookie(t.app, await createUser(t.app))).cookie;
}, BUILD_TIMEOUT_MS);
afterAll(() => t.close());
// oauth4webapi stamps proofs with the real time and the server judges iat by its own clock: a test that moves the
// server's clock must not leave it there for the next one.
afterEach(() => t.clock.set(new Date()));

async function boundTokens() {
  const client: oauth.Client = { client_id: web.clientId };
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
  const { code, verifier } = await getCode(t.app, web, cookie);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.ClientSecretBasic(web.secret),
    callback(client, code),
    REDIRECT,
    verifier,
    options(DPoP),
  );
  return {
    client,
    DPoP,
    response,
    tokens: await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: "n-456" }),
  };
}

/** The callback as the app receives it (getCode's request used state st-123), checked by oauth4webapi. */
function callback(client: oauth.Client, code: string): URLSearchParams {
  const url = new URL(REDIRECT);
  url.searchParams.set("code", code);
  url.searchParams.set("state", "st-123");
  url.searchParams.set("iss", as.issuer);
  return oauth.validateAuthResponse(as, client, url, "st-123");
}

const introspect = (token: string) =>
  t.app.inject({
    method: "POST",
    url: "/introspect",
    headers: { ...FORM, authorization: basic(web.clientId, web.secret) },
    payload: form({ token }),
  });

describe("DPoP at the server (RFC 9449)", () => {
  it("/introspect tells a DPoP-bound access token's key (cnf.jkt, token_type DPoP); a bearer token has none", async () => {
    const { tokens } = await boundTokens();
    const jkt = (decodeJwt(tokens.access_token).payload.cnf as { jkt: string }).jkt;
    const bound = await introspect(tokens.access_token);
    expect(bound.statusCode).toBe(200);
    expect(bound.json()).toMatchObject({ active: true, token_type: "DPoP", cnf: { jkt } });

    const { code, verifier } = await getCode(t.app, web, cookie);
    const plain = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, authorization: basic(web.clientId, web.secret) },
      payload: form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }),
    });
    const bearer = await introspect(plain.json().access_token);
    expect(bearer.json()).toMatchObject({ active: true, token_type: "Bearer" });
    expect(bearer.json().cnf).toBeUndefined();
  });

  it("/userinfo answers a DPoP-bound token with DPoP challenges: invalid_token for Bearer, invalid_dpop_proof without a proof", async () => {
    const { tokens } = await boundTokens();
    const asBearer = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(asBearer.statusCode).toBe(401);
    expect(asBearer.json().error).toBe("invalid_token");
    expect(asBearer.headers["www-authenticate"]).toMatch(
      /^DPoP realm="tessera", error="invalid_token", .*algs="ES256 /,
    );

    const noProof = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `DPoP ${tokens.access_token}` },
    });
    expect(noProof.statusCode).toBe(401);
    expect(noProof.json().error).toBe("invalid_dpop_proof");
    expect(noProof.headers["www-authenticate"]).toMatch(/^DPoP realm="tessera", error="invalid_dpop_proof"/);

    const badProof = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `DPoP ${tokens.access_token}`, dpop: "not.a.proof" },
    });
    expect(badProof.statusCode).toBe(401);
    expect(badProof.json().error).toBe("invalid_dpop_proof");
    expect(badProof.headers["www-authenticate"]).toMatch(/^DPoP /);
  });

  it("server nonces at /token: a requireDpop client is answered use_dpop_nonce first, and oauth4webapi retries with it", async () => {
    const row = await registerPublicClient(t.app, { redirectUris: [REDIRECT], requireDpop: true });
    const client: oauth.Client = { client_id: row.clientId };
    // The client's proofs are stamped with the server's (movable) clock, so moving it two nonce windows ahead makes the
    // nonce stale but never the proof itself too old, however fast the machine runs this test.
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"), {
      [oauth.modifyAssertion]: (_header, payload) => {
        payload.iat = Math.floor(t.clock.now().getTime() / 1000);
      },
    });
    const { code, verifier } = await getCode(t.app, { client: row, clientId: row.clientId, secret: "" }, cookie);
    const request = () =>
      oauth.authorizationCodeGrantRequest(
        as,
        client,
        oauth.None(),
        callback(client, code),
        REDIRECT,
        verifier,
        options(DPoP),
      );
    const first = await request();
    expect(first.status).toBe(400);
    const nonce = first.headers.get("dpop-nonce");
    expect(nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{32}$/);
    await expect(
      oauth.processAuthorizationCodeResponse(as, client, first, { expectedNonce: "n-456" }),
    ).rejects.toSatisfy((error) => oauth.isDPoPNonceError(error));
    // oauth4webapi kept the nonce from the DPoP-Nonce header: the retry carries it and succeeds (the code is unused:
    // the refused request consumed nothing).
    const second = await request();
    expect(second.status).toBe(200);
    expect(second.headers.get("dpop-nonce")).toBe(nonce);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, second, { expectedNonce: "n-456" });
    expect(tokens.token_type).toBe("dpop");

    // A forged nonce and a stale one (two windows later) are refused with a fresh nonce.
    const refresh = (handle: oauth.DPoPHandle) =>
      oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token as string, options(handle));
    const forged = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, dpop: await proofWithNonce(`${(nonce as string).split(".")[0]}.${"A".repeat(32)}`) },
      payload: form({ grant_type: "refresh_token", client_id: row.clientId, refresh_token: "x" }),
    });
    expect(forged.statusCode).toBe(400);
    expect(forged.json().error).toBe("use_dpop_nonce");
    expect(forged.headers["dpop-nonce"]).toBe(nonce);
    t.clock.advance(601);
    const stale = await refresh(DPoP);
    expect(stale.status).toBe(400);
    expect(((await stale.json()) as { error: string }).error).toBe("use_dpop_nonce");
    const fresh = stale.headers.get("dpop-nonce");
    expect(fresh).not.toBe(nonce);
    const retried = await refresh(DPoP);
    expect(retried.status).toBe(200);
  });

  it("client_credentials with a DPoP proof: a bound token (cnf.jkt, token_type DPoP), introspected with its key", async () => {
    const client: oauth.Client = { client_id: web.clientId };
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("EdDSA"));
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(web.secret),
      { scope: "profile" },
      options(DPoP),
    );
    expect(response.headers.get("dpop-nonce")).toBeTruthy();
    const tokens = await oauth.processClientCredentialsResponse(as, client, response);
    expect(tokens.token_type).toBe("dpop");
    const jkt = (decodeJwt(tokens.access_token).payload.cnf as { jkt: string }).jkt;
    expect(jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await introspect(tokens.access_token)).json()).toMatchObject({
      active: true,
      token_type: "DPoP",
      cnf: { jkt },
    });
  });

  it("device grant with a DPoP proof: bound tokens, and the refresh needs the same key", async () => {
    const console_ = await registerClient(t.app, { name: "Console", grantTypes: [DEVICE_GRANT, "refresh_token"] });
    const client: oauth.Client = { client_id: console_.clientId };
    const auth = oauth.ClientSecretBasic(console_.secret);
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
    const started = await oauth.processDeviceAuthorizationResponse(
      as,
      client,
      await oauth.deviceAuthorizationRequest(as, client, auth, { scope: "openid" }, options()),
    );
    const browser = await signedInBrowser(t.app, await createUser(t.app));
    const confirm = await browser.submit("/device", { user_code: started.user_code });
    const decided = await browser.post("/device/decision", {
      ...Object.fromEntries(
        [...confirm.body.matchAll(/name="(_csrf|user_code)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]),
      ),
      decision: "approve",
    });
    expect(decided.statusCode).toBe(200);
    t.clock.advance(5);
    const tokens = await oauth.processDeviceCodeResponse(
      as,
      client,
      await oauth.deviceCodeGrantRequest(as, client, auth, started.device_code, options(DPoP)),
    );
    expect(tokens.token_type).toBe("dpop");
    expect(decodeJwt(tokens.access_token).payload.cnf).toBeDefined();
    const thief = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
    const stolen = await oauth.refreshTokenGrantRequest(
      as,
      client,
      auth,
      tokens.refresh_token as string,
      options(thief),
    );
    expect(stolen.status).toBe(400);
    expect(((await stolen.json()) as { error: string }).error).toBe("invalid_grant");
    const noProof = await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token as string, options());
    expect(((await noProof.json()) as { error: string }).error).toBe("invalid_dpop_proof");
    const own = await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token as string, options(DPoP));
    expect(own.status).toBe(200);
  });
});

/** A DPoP proof for POST /token signed with a fresh key, carrying a chosen nonce (built by hand with jose). */
async function proofWithNonce(nonce: string): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  return new SignJWT({ htm: "POST", htu: `${t.app.ctx.config.issuer}/token`, jti: randomUUID(), nonce })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
    .setIssuedAt(Math.floor(t.clock.now().getTime() / 1000))
    .sign(privateKey);
}
