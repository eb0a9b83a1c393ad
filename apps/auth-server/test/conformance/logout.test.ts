import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKCHANNEL_EVENT, drainBackchannelLogouts } from "../../src/libraries/jobs/backchannel.ts";
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

const QUERY_POST_LOGOUT_URI = "https://rp.conformance.example/logged-out?foo=bar";

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
  it("oidcc-rp-initiated-logout", async () => {
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    const visit = await ua.visit(
      logoutUrl({
        id_token_hint: tokens.id_token as string,
        post_logout_redirect_uri: POST_LOGOUT_URI,
        state: "logout-state",
      }),
    );
    expect(visit.redirectedTo?.href).toBe(`${POST_LOGOUT_URI}?state=logout-state`);
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
    const [h, p, s] = (tokens.id_token as string).split(".");
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
    // Without a hint the OP must not sign out silently: it asks; after the tester confirms, it may redirect.
    const page = await ua.visit(
      logoutUrl({ client_id: rp.client.client_id, post_logout_redirect_uri: POST_LOGOUT_URI, state: "s2" }),
    );
    expect(page.redirectedTo).toBeUndefined();
    const done = await confirm(ua, page);
    expect(done.redirectedTo?.href).toBe(`${POST_LOGOUT_URI}?state=s2`);
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-no-post-logout-redirect-uri", async () => {
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    const visit = await ua.visit(logoutUrl({ id_token_hint: tokens.id_token as string }));
    expect(visit.redirectedTo).toBeUndefined();
    expect(visit.status).toBe(200);
    expect(visit.body).toContain("signed out");
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-only-state", async () => {
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
    const visit = await ua.visit(logoutUrl({ id_token_hint: tokens.id_token as string, state: "only" }));
    expect(visit.redirectedTo).toBeUndefined(); // no post_logout_redirect_uri: nowhere to send the state
    expect(visit.status).toBe(200);
    await expectSignedOut(ua);
  });

  it("oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri", async () => {
    const ua = agent();
    const { tokens } = await signIn(c, rp, ua);
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
