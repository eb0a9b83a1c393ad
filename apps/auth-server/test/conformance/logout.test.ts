import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKCHANNEL_EVENT, drainBackchannelLogouts } from "../../src/libraries/jobs/backchannel.ts";
import { openidConfiguration } from "../../src/routes/discovery.ts";
import {
  authorizationUrl,
  type Conformance,
  callbackError,
  confidentialClient,
  POST_LOGOUT_URI,
  signIn,
  startConformance,
  testUser,
  UserAgent,
  type Visit,
} from "./harness.ts";

/**
 * The OpenID Foundation's RP-Initiated Logout OP plan (oidcc-rp-initiated-logout-certification-test-plan) and
 * Back-Channel Logout OP plan (oidcc-backchannel-rp-initiated-logout-certification-test-plan), one test per module,
 * against a listening Tessera through oauth4webapi (sign-in) and a real HTTP back-channel receiver.
 */
let c: Conformance;
let rp: Awaited<ReturnType<typeof confidentialClient>>;
let tester: Awaited<ReturnType<typeof testUser>>;
let receiver: Server;
let receiverUrl: string;
const received: string[] = [];

/**
 * A registered post_logout_redirect_uri with a query of its own. Not POST_LOGOUT_URI + "?foo=bar": that is the
 * unregistered URI oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri sends and expects refused.
 */
const QUERY_POST_LOGOUT_URI = "https://rp.conformance.example/logged-out?client=conformance";

/** Building the app and migrating its database can take minutes on a loaded CI machine. */
const BUILD_TIMEOUT_MS = 180_000;

beforeAll(async () => {
  c = await startConformance();
  receiver = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      received.push(body);
      response.writeHead(200, { "cache-control": "no-store" }).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  rp = await confidentialClient(c, {
    postLogoutRedirectUris: [POST_LOGOUT_URI, QUERY_POST_LOGOUT_URI],
    backchannelLogoutUri: `${receiverUrl}/backchannel`,
  });
  tester = await testUser(c);
}, BUILD_TIMEOUT_MS);
afterAll(async () => {
  receiver?.close();
  await c.close();
});

function agent(): UserAgent {
  const ua = new UserAgent(c.issuer);
  ua.credentials = { email: tester.email, password: tester.password };
  return ua;
}

function logoutUrl(params: Record<string, string>): URL {
  const url = new URL(c.as.end_session_endpoint as string);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

/** After a logout the suite checks the session is gone: prompt=none must answer login_required. */
async function expectSignedOut(ua: UserAgent) {
  const request = await authorizationUrl(c, rp.client, { prompt: "none" });
  expect(callbackError(c, rp.client, await ua.visit(request.url), request.state).error).toBe("login_required");
}

async function expectStillSignedIn(ua: UserAgent) {
  const request = await authorizationUrl(c, rp.client, { prompt: "none" });
  const visit = await ua.visit(request.url);
  expect(visit.redirectedTo?.searchParams.get("code")).toBeTruthy();
}

function expectErrorPage(visit: Visit) {
  expect(visit.redirectedTo).toBeUndefined();
  expect(visit.status).toBe(400);
}

/**
 * The discovery modules' checks: end_session_endpoint is there, and every endpoint is on the issuer's origin. The suite
 * also wants every endpoint https (CheckDiscEndpointAllEndpointsAreHttps); the harness's issuer is plain http on
 * loopback, so that is checked on the metadata for an https issuer (production refuses any other ISSUER).
 */
function expectLogoutDiscovery(metadata: Record<string, unknown>) {
  expect(typeof metadata.end_session_endpoint).toBe("string");
  expect(metadata.end_session_endpoint).toBe(`${c.issuer}/logout`);
  const endpoints = Object.entries(metadata).filter(([k]) => k.endsWith("_endpoint") || k === "jwks_uri");
  expect(endpoints.length).toBeGreaterThan(5);
  for (const [name, value] of endpoints) expect(new URL(value as string).origin, name).toBe(c.issuer);
  const https = openidConfiguration("https://id.conformance.example") as Record<string, unknown>;
  for (const [name, value] of Object.entries(https)) {
    if (name.endsWith("_endpoint") || name === "jwks_uri") expect(String(value), name).toMatch(/^https:\/\//);
  }
}

async function discovery(): Promise<Record<string, unknown>> {
  const response = await fetch(`${c.issuer}/.well-known/openid-configuration`);
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

/** The confirmation page Tessera shows without an id_token_hint; the tester confirms, as the suite asks. */
async function confirm(ua: UserAgent, visit: Visit): Promise<Visit> {
  expect(visit.status).toBe(200);
  expect(visit.body).toContain('action="/logout"');
  const fields: Record<string, string> = {};
  for (const m of visit.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[m[1] as string] = (m[2] as string).replace(/&amp;/g, "&");
  }
  return ua.visit("/logout", { form: fields });
}

describe("oidcc-rp-initiated-logout-certification-test-plan", () => {
  it("oidcc-rp-initiated-logout-discovery-endpoint-verification", async () => {
    expectLogoutDiscovery(await discovery());
  });

  it("oidcc-rp-initiated-logout", async () => {
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    // The suite's logout state is 128 characters, to check the OP does not truncate or corrupt it.
    const state = Buffer.from(crypto.getRandomValues(new Uint8Array(96))).toString("base64url");
    expect(state).toHaveLength(128);
    const visit = await ua.visit(
      logoutUrl({ id_token_hint: tokens.id_token as string, post_logout_redirect_uri: POST_LOGOUT_URI, state }),
    );
    expect(visit.redirectedTo?.href).toBe(`${POST_LOGOUT_URI}?state=${state}`);
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-bad-post-logout-redirect-uri", async () => {
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    const visit = await ua.visit(
      logoutUrl({
        id_token_hint: tokens.id_token as string,
        post_logout_redirect_uri: "https://rp.conformance.example/not-registered",
        state: "s",
      }),
    );
    expectErrorPage(visit);
    expect(visit.body).toContain("not registered");
  });

  it("oidcc-rp-initiated-logout-modified-id-token-hint", async () => {
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    // The module's modification: the same claims, the header changed to alg "none" and the signature dropped.
    const [h, p, s] = (tokens.id_token as string).split(".");
    const unsigned = `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${p}.`;
    const refused = await ua.visit(
      logoutUrl({ id_token_hint: unsigned, post_logout_redirect_uri: POST_LOGOUT_URI, state: "s" }),
    );
    expectErrorPage(refused);
    await expectStillSignedIn(ua);
    // Also a changed claim under the original signature.
    const payload = JSON.parse(Buffer.from(p as string, "base64url").toString());
    payload.sub = "someone-else";
    const modified = `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
    const visit = await ua.visit(
      logoutUrl({ id_token_hint: modified, post_logout_redirect_uri: POST_LOGOUT_URI, state: "s" }),
    );
    expectErrorPage(visit);
    await expectStillSignedIn(ua); // a forged hint ends nothing
  });

  it("oidcc-rp-initiated-logout-no-params", async () => {
    const ua = agent();
    await signIn(c, rp, ua);
    const page = await ua.visit(logoutUrl({}));
    expect(page.redirectedTo).toBeUndefined();
    await expectStillSignedIn(ua); // nothing changes on the GET
    const done = await confirm(ua, await ua.visit(logoutUrl({})));
    expect(done.status).toBe(200);
    expect(done.body).toContain("signed out");
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-no-id-token-hint", async () => {
    const ua = agent();
    await signIn(c, rp, ua);
    // The module's request: post_logout_redirect_uri and state, no id_token_hint and no client_id. The OP must not
    // redirect back (the module fails on any call to the post_logout_redirect_uri) and shows an error or asks: nothing
    // names the application whose URI it is, so Tessera shows an error and the session stays.
    const refused = await ua.visit(logoutUrl({ post_logout_redirect_uri: POST_LOGOUT_URI, state: "s1" }));
    expectErrorPage(refused);
    expect(refused.body).toContain("client_id");
    await expectStillSignedIn(ua);
    // Beyond the module: with client_id (RP-Initiated Logout 1.0 section 2), the OP must not sign out silently either;
    // it asks, and after the tester confirms it may redirect to the client's registered URI.
    const page = await ua.visit(
      logoutUrl({ client_id: rp.client.client_id, post_logout_redirect_uri: POST_LOGOUT_URI, state: "s2" }),
    );
    expect(page.redirectedTo).toBeUndefined();
    const done = await confirm(ua, page);
    expect(done.redirectedTo?.href).toBe(`${POST_LOGOUT_URI}?state=s2`);
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-no-post-logout-redirect-uri", async () => {
    // The module's request: id_token_hint and state, no post_logout_redirect_uri: signed out, the signed-out page.
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    const visit = await ua.visit(logoutUrl({ id_token_hint: tokens.id_token as string, state: "only" }));
    expect(visit.redirectedTo).toBeUndefined(); // no post_logout_redirect_uri: nowhere to send the state
    expect(visit.status).toBe(200);
    expect(visit.body).toContain("signed out");
    await expectSignedOut(ua);
    // The id_token_hint alone.
    const again = await signIn(c, rp, ua);
    const hintOnly = await ua.visit(logoutUrl({ id_token_hint: again.tokens.id_token as string }));
    expect(hintOnly.redirectedTo).toBeUndefined();
    expect(hintOnly.status).toBe(200);
    expect(hintOnly.body).toContain("signed out");
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-no-state", async () => {
    // id_token_hint and post_logout_redirect_uri, no state: the redirect carries no state and no other parameter
    // (CheckNoPostLogoutState, CheckForUnexpectedParametersInPostLogoutRedirect), and the session is gone.
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    const visit = await ua.visit(
      logoutUrl({ id_token_hint: tokens.id_token as string, post_logout_redirect_uri: POST_LOGOUT_URI }),
    );
    expect(visit.redirectedTo?.href).toBe(POST_LOGOUT_URI);
    expect([...(visit.redirectedTo as URL).searchParams]).toEqual([]);
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-only-state", async () => {
    // Only state: no id_token_hint, no post_logout_redirect_uri. The OP must sign the user out and show that it did
    // (the module fails on a call to the post_logout_redirect_uri). Without a hint Tessera asks first; the tester
    // confirms, as in oidcc-rp-initiated-logout-no-params.
    const ua = agent();
    await signIn(c, rp, ua);
    const page = await ua.visit(logoutUrl({ state: "only" }));
    expect(page.redirectedTo).toBeUndefined();
    const done = await confirm(ua, page);
    expect(done.redirectedTo).toBeUndefined(); // nowhere to send the state
    expect(done.status).toBe(200);
    expect(done.body).toContain("signed out");
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-bad-id-token-hint", async () => {
    // An id_token_hint signed by the suite, not the OP: an error page, no redirect, and the session stays.
    const ua = agent();
    const { claims } = await signIn(c, rp, ua);
    const { privateKey } = await generateKeyPair("RS256");
    const now = Math.floor(c.t.clock.now().getTime() / 1000);
    // The module's token: iss and aud the wrong way round ("issued" by the client), a made-up subject.
    const fake = await new SignJWT({ nonce: "flibble" })
      .setProtectedHeader({ alg: "RS256", kid: "conformance-suite" })
      .setIssuer(rp.client.client_id)
      .setSubject("SubjectID")
      .setAudience(c.issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
    const visit = await ua.visit(
      logoutUrl({ id_token_hint: fake, post_logout_redirect_uri: POST_LOGOUT_URI, state: "s" }),
    );
    expectErrorPage(visit);
    await expectStillSignedIn(ua);
    // Worse: the tester's real claims under the kid of Tessera's own RS256 key, signed with another key.
    const jwks = (await (await fetch(c.as.jwks_uri as string)).json()) as { keys: { kid: string; alg: string }[] };
    const kid = jwks.keys.find((k) => k.alg === "RS256")?.kid as string;
    const forged = await new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: "RS256", kid })
      .setIssuer(c.issuer)
      .setSubject(claims.sub)
      .setAudience(rp.client.client_id)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
    const again = await ua.visit(
      logoutUrl({ id_token_hint: forged, post_logout_redirect_uri: POST_LOGOUT_URI, state: "s" }),
    );
    expectErrorPage(again);
    await expectStillSignedIn(ua);
  });

  it("oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri", async () => {
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    // The module's request: the registered post_logout_redirect_uri with "?foo=bar" added is another, unregistered
    // URI (exact match): an error page, no redirect, and the session stays.
    const refused = await ua.visit(
      logoutUrl({
        id_token_hint: tokens.id_token as string,
        post_logout_redirect_uri: `${POST_LOGOUT_URI}?foo=bar`,
        state: "q",
      }),
    );
    expectErrorPage(refused);
    expect(refused.body).toContain("not registered");
    await expectStillSignedIn(ua);
    // A URI registered with a query keeps it, and the state is added to it.
    const visit = await ua.visit(
      logoutUrl({
        id_token_hint: tokens.id_token as string,
        post_logout_redirect_uri: QUERY_POST_LOGOUT_URI,
        state: "q",
      }),
    );
    expect(visit.redirectedTo?.href).toBe(`${QUERY_POST_LOGOUT_URI}&state=q`);
    await expectSignedOut(ua);
  });
});

describe("oidcc-backchannel-rp-initiated-logout-certification-test-plan", () => {
  it("oidcc-backchannel-logout-discovery-endpoint-verification", async () => {
    const metadata = await discovery();
    expect(metadata.backchannel_logout_supported).toBe(true);
    // Required for certification: sid in the ID token and the logout token.
    expect(metadata.backchannel_logout_session_supported).toBe(true);
    expectLogoutDiscovery(metadata);
  });

  it("oidcc-backchannel-rp-initiated-logout", async () => {
    expect(c.as.backchannel_logout_supported).toBe(true);
    expect(c.as.backchannel_logout_session_supported).toBe(true);
    const ua = agent();
    const { tokens, claims } = await signIn(c, rp, ua);
    expect(typeof claims.sid).toBe("string"); // backchannel_logout_session_supported: sid in the ID token
    await drainBackchannelLogouts(c.t.app.ctx); // the earlier modules' logouts
    received.length = 0;
    const visit = await ua.visit(
      logoutUrl({ id_token_hint: tokens.id_token as string, post_logout_redirect_uri: POST_LOGOUT_URI, state: "b" }),
    );
    expect(visit.redirectedTo?.href).toBe(`${POST_LOGOUT_URI}?state=b`);
    expect((await drainBackchannelLogouts(c.t.app.ctx)).delivered).toBe(1);
    expect(received).toHaveLength(1);
    // Only logout_token in the body (CheckForUnexpectedParametersInBackchannelLogoutRequest).
    expect([...new URLSearchParams(received[0]).keys()]).toEqual(["logout_token"]);
    const logoutToken = new URLSearchParams(received[0]).get("logout_token") as string;
    // Back-Channel Logout 1.0 2.4 and 2.6, as the module validates the token.
    expect(decodeProtectedHeader(logoutToken).typ).toBe("logout+jwt");
    const { payload } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL(c.as.jwks_uri as string)), {
      issuer: c.issuer,
      audience: rp.client.client_id,
      typ: "logout+jwt",
      currentDate: c.t.clock.now(),
    });
    expect(payload.sub).toBe(claims.sub);
    expect(payload.sid).toBe(claims.sid);
    expect(typeof payload.iat).toBe("number");
    expect(typeof payload.jti).toBe("string");
    expect(payload.events).toEqual({ [BACKCHANNEL_EVENT]: {} });
    expect(payload.nonce).toBeUndefined();
    // The refresh token of the ended session no longer works.
    await expectSignedOut(ua);
  });
});
