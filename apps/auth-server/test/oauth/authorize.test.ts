import { randomUUID } from "node:crypto";
import { authorizationCodes } from "@tessera/db";
import { eq } from "drizzle-orm";
import { generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../src/libraries/crypto.ts";
import type { TestApp } from "../helpers.ts";
import {
  authorizeQuery,
  buildOAuthApp,
  createUser,
  FORM,
  locationParams,
  pkce,
  REDIRECT,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "./helpers.ts";

let t: TestApp;
let client: TestClient;
let cookie: string;
const ISSUER = "http://localhost:3000";

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app, {
    redirectUris: [REDIRECT, "https://shop.example/cb?tenant=1", "http://127.0.0.1:8123/cb"],
  });
  const user = await createUser(t.app);
  ({ cookie } = await sessionCookie(t.app, user));
});
afterAll(async () => t.close());

const authorize = (query: string, headers: Record<string, string> = { cookie }) =>
  t.app.inject({ method: "GET", url: `/authorize?${query}`, headers });

describe("success", () => {
  it("with a session, redirects at once with code, state and iss (RFC 9207); stores only the code's hash", async () => {
    const response = await authorize(authorizeQuery(client));
    expect(response.statusCode).toBe(302);
    const location = new URL(response.headers.location as string);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect([...location.searchParams.keys()].sort()).toEqual(["code", "iss", "state"]);
    expect(location.searchParams.get("state")).toBe("st-123");
    expect(location.searchParams.get("iss")).toBe(ISSUER);
    const code = location.searchParams.get("code") as string;
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [row] = await t.app.ctx.db
      .select()
      .from(authorizationCodes)
      .where(eq(authorizationCodes.codeHash, sha256(code)));
    expect(row?.nonce).toBe("n-456");
    expect(row?.codeChallengeMethod).toBe("S256");
    expect((row?.expiresAt.getTime() ?? 0) - (row?.createdAt.getTime() ?? 0)).toBe(60_000);
    // No CORS on /authorize.
    expect(response.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("keeps a registered redirect URI's own query and appends to it", async () => {
    const response = await authorize(authorizeQuery(client, { redirect_uri: "https://shop.example/cb?tenant=1" }));
    expect(response.statusCode).toBe(302);
    const location = new URL(response.headers.location as string);
    expect(location.searchParams.get("tenant")).toBe("1");
    expect(location.searchParams.get("code")).toBeTruthy();
  });

  it("POST /authorize with a form body works like GET and answers 303", async () => {
    const response = await t.app.inject({
      method: "POST",
      url: "/authorize",
      headers: { ...FORM, cookie },
      payload: authorizeQuery(client),
    });
    expect(response.statusCode).toBe(303);
    expect(locationParams(response).get("code")).toBeTruthy();
  });

  it("ignores unknown parameters", async () => {
    const response = await authorize(`${authorizeQuery(client)}&foo=bar&request_foo=1`);
    expect(response.statusCode).toBe(302);
    expect(locationParams(response).get("code")).toBeTruthy();
  });

  it("OPTIONS (CORS preflight) gets 405 and no CORS headers", async () => {
    const response = await t.app.inject({
      method: "OPTIONS",
      url: "/authorize",
      headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
    });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe("GET, HEAD, POST");
    expect(response.headers["access-control-allow-origin"]).toBeUndefined();
  });
});

describe("errors shown as a page, never redirected (client or redirect URI not valid)", () => {
  const variants = [
    "https://SHOP.example/cb",
    "https://shop.example:443/cb",
    "https://shop.example/cb/",
    "https://shop.example/cb/extra",
    "https://shop.example/cb?x=1",
    "https://shop.example/cb#frag",
    "https://shop.example@evil.example/cb",
    "https://evil.example/cb",
    "https://shop.example/cb/..;/cb",
    "https://shop.example/%63b",
    "https://shop.example/cb%2F..",
    "//shop.example/cb",
    "http://shop.example/cb",
    "https://shop.example.evil.example/cb",
    "https://shop.example/CB",
    " https://shop.example/cb",
  ];
  for (const redirectUri of variants) {
    it(`redirect_uri ${JSON.stringify(redirectUri)} → 400 page, no Location`, async () => {
      const response = await authorize(authorizeQuery(client, { redirect_uri: redirectUri }));
      expect(response.statusCode).toBe(400);
      expect(response.headers.location).toBeUndefined();
      expect(response.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(response.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(response.body).toContain("The redirect_uri is not registered for this application.");
    });
  }

  it("unknown client", async () => {
    const response = await authorize(authorizeQuery(client, { client_id: "nope" }));
    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
    expect(response.body).toContain("The application (client_id) is unknown or disabled.");
    expect(response.body).toContain("<h1>This sign-in request cannot continue</h1>");
  });

  it("is the one HTML error page: the configured product name, the RFC error code, the request id, not cached", async () => {
    const branded = await buildOAuthApp({ MAIL_FROM_NAME: "Acme Sign-In" });
    try {
      const response = await branded.app.inject({
        method: "GET",
        url: `/authorize?${authorizeQuery(client, { client_id: "nope" })}`,
        headers: { "x-request-id": "req-page-1" },
      });
      expect(response.statusCode).toBe(400);
      expect(response.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(response.headers["cache-control"]).toBe("no-store");
      expect(response.body).toContain("· Acme Sign-In</title>");
      expect(response.body).toContain('<div class="name">Acme Sign-In</div>');
      expect(response.body).toContain("Error code: invalid_client · Request req-page-1");
      expect(response.body).toContain("The application (client_id) is unknown or disabled.");
    } finally {
      await branded.close();
    }
  }, 0);

  it("missing client_id and missing redirect_uri", async () => {
    const noClient = await authorize("response_type=code&redirect_uri=https%3A%2F%2Fshop.example%2Fcb");
    expect(noClient.statusCode).toBe(400);
    expect(noClient.body).toContain("The client_id parameter is missing.");
    const noRedirect = await authorize(`client_id=${client.clientId}&response_type=code`);
    expect(noRedirect.statusCode).toBe(400);
    expect(noRedirect.body).toContain("The redirect_uri parameter is missing.");
  });

  it("duplicated client_id or redirect_uri", async () => {
    const dupClient = await authorize(`${authorizeQuery(client)}&client_id=${client.clientId}`);
    expect(dupClient.statusCode).toBe(400);
    expect(dupClient.headers.location).toBeUndefined();
    expect(dupClient.body).toContain("The client_id parameter is included more than once.");
    const dupRedirect = await authorize(`${authorizeQuery(client)}&redirect_uri=${encodeURIComponent(REDIRECT)}`);
    expect(dupRedirect.statusCode).toBe(400);
    expect(dupRedirect.body).toContain("The redirect_uri parameter is included more than once.");
  });

  it("oversized redirect_uri", async () => {
    const response = await authorize(authorizeQuery(client, { redirect_uri: `${REDIRECT}?${"a".repeat(3000)}` }));
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain("The redirect_uri parameter is too long.");
  });

  it("a disabled client", async () => {
    const disabled = await registerClient(t.app);
    const { disableClient } = await import("../../src/libraries/clients/index.ts");
    await disableClient(t.app.ctx, disabled.clientId);
    const response = await authorize(authorizeQuery(disabled));
    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
  });

  it("POST with JSON is an error page", async () => {
    const response = await t.app.inject({
      method: "POST",
      url: "/authorize",
      headers: { "content-type": "application/json", cookie },
      payload: JSON.stringify({ client_id: client.clientId }),
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers.location).toBeUndefined();
  });
});

describe("errors redirected to the client (client and redirect URI valid), with state and iss", () => {
  async function errorOf(query: string, headers?: Record<string, string>) {
    const response = await authorize(query, headers);
    expect(response.statusCode).toBe(302);
    const location = new URL(response.headers.location as string);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get("iss")).toBe(ISSUER);
    expect(location.searchParams.get("code")).toBeNull();
    return Object.fromEntries(location.searchParams);
  }

  it("response_type other than code", async () => {
    expect(await errorOf(authorizeQuery(client, { response_type: "token" }))).toEqual({
      error: "unsupported_response_type",
      error_description: "Only response_type=code is supported.",
      state: "st-123",
      iss: ISSUER,
    });
    expect((await errorOf(authorizeQuery(client, { response_type: "code id_token" }))).error).toBe(
      "unsupported_response_type",
    );
  });

  it("missing PKCE, plain, missing method (= plain), malformed challenge", async () => {
    const noChallenge = new URLSearchParams(authorizeQuery(client));
    noChallenge.delete("code_challenge");
    noChallenge.delete("code_challenge_method");
    expect(await errorOf(noChallenge.toString())).toMatchObject({
      error: "invalid_request",
      error_description: "PKCE is required: send code_challenge (S256).",
    });
    expect(await errorOf(authorizeQuery(client, { code_challenge_method: "plain" }))).toMatchObject({
      error: "invalid_request",
      error_description: "code_challenge_method must be S256; plain is not allowed.",
    });
    const noMethod = new URLSearchParams(authorizeQuery(client));
    noMethod.delete("code_challenge_method");
    expect((await errorOf(noMethod.toString())).error_description).toBe(
      "code_challenge_method must be S256; plain is not allowed.",
    );
    expect((await errorOf(authorizeQuery(client, { code_challenge: "short" }))).error_description).toBe(
      "code_challenge must be 43 characters of base64url (S256).",
    );
  });

  // Unknown scope values are ignored (OIDC Core 3.1.2.1): test/oauth/client-kinds/deviations.test.ts.
  it("scopes: openid required", async () => {
    expect(await errorOf(authorizeQuery(client, { scope: "profile" }))).toMatchObject({
      error: "invalid_scope",
      error_description: "The openid scope is required.",
    });
  });

  it("duplicated parameters other than client_id/redirect_uri", async () => {
    expect(await errorOf(`${authorizeQuery(client)}&scope=openid`)).toMatchObject({
      error: "invalid_request",
      error_description: "The scope parameter is included more than once.",
      state: "st-123",
    });
    // A duplicated state cannot be echoed.
    const dupState = await errorOf(`${authorizeQuery(client)}&state=other`);
    expect(dupState.error_description).toBe("The state parameter is included more than once.");
    expect(dupState.state).toBeUndefined();
  });

  it("oversized values", async () => {
    expect((await errorOf(authorizeQuery(client, { nonce: "n".repeat(600) }))).error_description).toBe(
      "The nonce parameter is too long.",
    );
  });

  it("bad prompt and max_age values, response_mode", async () => {
    expect((await errorOf(authorizeQuery(client, { prompt: "none login" }))).error_description).toBe(
      "prompt=none cannot be combined with other values.",
    );
    expect((await errorOf(authorizeQuery(client, { prompt: "bogus" }))).error_description).toBe(
      "Unsupported prompt value.",
    );
    expect((await errorOf(authorizeQuery(client, { max_age: "-1" }))).error_description).toBe(
      "max_age must be a non-negative integer.",
    );
    expect((await errorOf(authorizeQuery(client, { response_mode: "fragment" }))).error_description).toBe(
      "Only response_mode=query is supported.",
    );
  });

  it("a forged id_token_hint", async () => {
    const forged = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"x"}').toString("base64url")}.`;
    // A real ID token with its payload swapped for another user's (header and signature kept), and one signed by a
    // key that is not Tessera's under a Tessera kid: only a signature check tells them from a real one.
    const real = (await tokensFor(t.app, client, cookie)).id_token;
    const [header, payload, signature] = real.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: randomUUID() })).toString("base64url")}.${signature}`;
    const { privateKey } = await generateKeyPair("RS256");
    const foreign = await new SignJWT(claims)
      .setProtectedHeader(JSON.parse(Buffer.from(header, "base64url").toString()))
      .sign(privateKey);
    for (const hint of [forged, tampered, foreign]) {
      expect(await errorOf(authorizeQuery(client, { id_token_hint: hint }))).toMatchObject({
        error: "invalid_request",
        error_description: "The id_token_hint is not a valid ID token issued by Tessera.",
      });
    }
    // The untouched token is accepted (the check above is the signature's, not the shape's).
    expect(locationParams(await authorize(authorizeQuery(client, { id_token_hint: real }))).get("code")).toBeTruthy();
  });
});

describe("sessions, prompt and max_age", () => {
  it("without a session: to the hosted sign-in page, returning to the same request", async () => {
    const query = authorizeQuery(client);
    const response = await authorize(query, {});
    expect(response.statusCode).toBe(302);
    const location = new URL(response.headers.location as string, ISSUER);
    expect(location.pathname).toBe("/login");
    expect(location.searchParams.get("client_id")).toBe(client.clientId);
    expect(location.searchParams.get("prompt")).toBeNull();
    const returnTo = location.searchParams.get("return_to") as string;
    expect(returnTo.startsWith("/authorize?")).toBe(true);
    expect(Object.fromEntries(new URLSearchParams(returnTo.slice("/authorize?".length)))).toEqual(
      Object.fromEntries(new URLSearchParams(query)),
    );
    // Coming back with a session now yields a code.
    const again = await authorize(returnTo.slice("/authorize?".length));
    expect(locationParams(again).get("code")).toBeTruthy();
  });

  it("login_hint reaches the sign-in page and pre-fills the email field (escaped); a non-email hint does not", async () => {
    const hinted = await authorize(authorizeQuery(client, { login_hint: 'ada"<b>@example.com' }), {});
    const location = new URL(hinted.headers.location as string, ISSUER);
    expect(location.searchParams.get("login_hint")).toBe('ada"<b>@example.com');
    const page = await t.app.inject({ method: "GET", url: `${location.pathname}${location.search}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('value="ada&quot;&lt;b&gt;@example.com"');
    expect(page.body).not.toContain("<b>@example.com");

    const odd = await authorize(authorizeQuery(client, { login_hint: "not an email" }), {});
    expect(new URL(odd.headers.location as string, ISSUER).searchParams.has("login_hint")).toBe(false);
  });

  it("POST /authorize without a session re-encodes the request as a GET return_to", async () => {
    const response = await t.app.inject({
      method: "POST",
      url: "/authorize",
      headers: FORM,
      payload: authorizeQuery(client),
    });
    expect(response.statusCode).toBe(303);
    const location = new URL(response.headers.location as string, ISSUER);
    expect(location.pathname).toBe("/login");
    expect(location.searchParams.get("return_to")).toMatch(/^\/authorize\?client_id=/);
  });

  it("prompt=none without a session → login_required to the client", async () => {
    const response = await authorize(authorizeQuery(client, { prompt: "none" }), {});
    expect(Object.fromEntries(locationParams(response))).toEqual({
      error: "login_required",
      error_description: "The user is not signed in.",
      state: "st-123",
      iss: ISSUER,
    });
  });

  it("prompt=none with a session → a code (silent sign-on)", async () => {
    const response = await authorize(authorizeQuery(client, { prompt: "none" }));
    expect(locationParams(response).get("code")).toBeTruthy();
  });

  it("prompt=login forces a fresh sign-in, and the return drops it so there is no loop", async () => {
    const response = await authorize(authorizeQuery(client, { prompt: "login consent" }));
    const location = new URL(response.headers.location as string, ISSUER);
    expect(location.pathname).toBe("/login");
    expect(location.searchParams.get("prompt")).toBe("login");
    const returnTo = new URLSearchParams((location.searchParams.get("return_to") as string).split("?")[1]);
    expect(returnTo.get("prompt")).toBe("consent");
  });

  it("max_age: a sign-in older than max_age demands a fresh one (prompt=none → login_required)", async () => {
    const user = await createUser(t.app);
    const fresh = await sessionCookie(t.app, user);
    const ok = await authorize(authorizeQuery(client, { max_age: "60" }), { cookie: fresh.cookie });
    expect(locationParams(ok).get("code")).toBeTruthy();
    t.clock.advance(120);
    const stale = await authorize(authorizeQuery(client, { max_age: "60" }), { cookie: fresh.cookie });
    const location = new URL(stale.headers.location as string, ISSUER);
    expect(location.pathname).toBe("/login");
    expect(location.searchParams.get("prompt")).toBe("login");
    expect(
      new URLSearchParams((location.searchParams.get("return_to") as string).split("?")[1]).get("max_age"),
    ).toBeNull();
    const none = await authorize(authorizeQuery(client, { max_age: "60", prompt: "none" }), { cookie: fresh.cookie });
    expect(locationParams(none).get("error")).toBe("login_required");
  });

  it("an id_token_hint for another user than the session's: treated as not signed in", async () => {
    const tokens = await tokensFor(t.app, client, cookie);
    const other = await sessionCookie(t.app, await createUser(t.app));
    const response = await authorize(authorizeQuery(client, { prompt: "none", id_token_hint: tokens.id_token }), {
      cookie: other.cookie,
    });
    expect(locationParams(response).get("error")).toBe("login_required");
    const same = await authorize(authorizeQuery(client, { prompt: "none", id_token_hint: tokens.id_token }));
    expect(locationParams(same).get("code")).toBeTruthy();
  });
});

describe("consent for third-party clients", () => {
  let thirdParty: TestClient;
  beforeAll(async () => {
    thirdParty = await registerClient(t.app, { name: "Partner <App>", firstParty: false });
  });

  it("prompt=none → consent_required", async () => {
    const response = await authorize(authorizeQuery(thirdParty, { prompt: "none" }));
    expect(locationParams(response).get("error")).toBe("consent_required");
  });

  it("shows the consent page (escaped), approving with CSRF yields a code, denying yields access_denied", async () => {
    const { challenge } = pkce();
    const page = await authorize(authorizeQuery(thirdParty, {}, challenge));
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.body).toContain("Partner &lt;App&gt; wants to access your account");
    expect(page.body).toContain("Your email address");
    // A hosted page carrying a CSRF token: never framed, never cached.
    expect(page.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    expect(page.headers["cache-control"]).toBe("no-store");
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] as string;
    const setCookie = page.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
    const fields = [...page.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map(
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

    // Without the CSRF token: refused.
    const noCsrf = new URLSearchParams(body);
    noCsrf.delete("_csrf");
    noCsrf.set("decision", "approve");
    const refused = await t.app.inject({
      method: "POST",
      url: "/authorize/consent",
      headers: { ...FORM, cookie: `${cookie}; ${setCookie}` },
      payload: noCsrf.toString(),
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.headers.location).toBeUndefined();

    const approve = new URLSearchParams(body);
    approve.set("decision", "approve");
    const approved = await t.app.inject({
      method: "POST",
      url: "/authorize/consent",
      headers: { ...FORM, cookie: `${cookie}; ${setCookie}` },
      payload: approve.toString(),
    });
    expect(approved.statusCode).toBe(303);
    expect(locationParams(approved).get("code")).toBeTruthy();
    expect(locationParams(approved).get("state")).toBe("st-123");
    expect(csrf).toBeTruthy();

    const deny = new URLSearchParams(body);
    deny.set("decision", "deny");
    const denied = await t.app.inject({
      method: "POST",
      url: "/authorize/consent",
      headers: { ...FORM, cookie: `${cookie}; ${setCookie}` },
      payload: deny.toString(),
    });
    expect(denied.statusCode).toBe(303);
    expect(Object.fromEntries(locationParams(denied))).toEqual({
      error: "access_denied",
      error_description: "The user denied the request.",
      tessera_code: "CONSENT_DENIED",
      state: "st-123",
      iss: ISSUER,
    });
  });

  it("tells a refused consent and a missing second factor apart by tessera_code (both are access_denied)", async () => {
    // The shared session is password-only and its user has no second factor.
    const response = await authorize(authorizeQuery(client, { acr_values: "urn:tessera:acr:mfa" }));
    expect(response.statusCode).toBe(302);
    expect(Object.fromEntries(locationParams(response))).toEqual({
      error: "access_denied",
      error_description: "This application requires two-step verification, which is not turned on for this account.",
      tessera_code: "SECOND_FACTOR_NOT_ENROLLED",
      state: "st-123",
      iss: ISSUER,
    });
  });
});

describe("hostile input", () => {
  it("wrong methods on /authorize answer 405", async () => {
    for (const method of ["PUT", "DELETE", "PATCH"] as const) {
      const response = await t.app.inject({ method, url: `/authorize?${authorizeQuery(client)}` });
      expect(response.statusCode).toBe(405);
    }
  });

  it("bad percent-encoding and binary junk never cause a 500", async () => {
    for (const query of ["client_id=%E0%A4%A", "%%%", "client_id[]=x", `client_id=${"\u0000".repeat(3)}`]) {
      const response = await t.app.inject({ method: "GET", url: `/authorize?${query}` });
      expect(response.statusCode).toBeLessThan(500);
      expect(response.statusCode).toBeGreaterThanOrEqual(400);
    }
  });
});
