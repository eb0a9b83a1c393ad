import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApp } from "../../helpers.ts";
import {
  authorizeQuery,
  basic,
  buildOAuthApp,
  createUser,
  decodeJwt,
  FORM,
  form,
  locationParams,
  pkce,
  redeem,
  registerClient,
  sessionCookie,
  type TestClient,
} from "../helpers.ts";

let t: TestApp;
let client: TestClient;
let cookie: string;

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app, { allowedScopes: ["openid", "profile", "email"] });
  cookie = (await sessionCookie(t.app, await createUser(t.app))).cookie;
});
afterAll(async () => t.close());

const authorize = (extra: Record<string, string>) =>
  t.app.inject({ method: "GET", url: `/authorize?${authorizeQuery(client, extra)}`, headers: { cookie } });

describe("smaller deviations of #13", () => {
  it("unknown scope values (and ones the client may not have) are ignored, not invalid_scope (OIDC Core 3.1.2.1)", async () => {
    const { verifier, challenge } = pkce();
    const response = await t.app.inject({
      method: "GET",
      url: `/authorize?${authorizeQuery(client, { scope: "openid email made.up offline_access" }, challenge)}`,
      headers: { cookie },
    });
    expect(response.statusCode).toBe(302);
    const code = locationParams(response).get("code");
    expect(code).toBeTruthy();
    const tokens = (await redeem(t.app, client, code as string, verifier)).json();
    expect(tokens.scope).toBe("openid email");
  });

  it("max_age=0 forces a new sign-in even within the same second as the last one", async () => {
    const fresh = await sessionCookie(t.app, await createUser(t.app));
    const response = await t.app.inject({
      method: "GET",
      url: `/authorize?${authorizeQuery(client, { max_age: "0" })}`,
      headers: { cookie: fresh.cookie },
    });
    expect(response.statusCode).toBe(302);
    expect(response.headers.location).toMatch(/^\/login\?/);
    // The returning request drops max_age, so the user is not sent round in circles.
    const returnTo = new URL(response.headers.location as string, "http://x").searchParams.get("return_to") ?? "";
    expect(returnTo).not.toContain("max_age");
    // max_age=1 within the same second is still fine.
    expect(locationParams(await authorize({ max_age: "5" })).get("code")).toBeTruthy();
  });

  it("request and request_uri are refused by name; discovery says so", async () => {
    const request = locationParams(await authorize({ request: "eyJhbGciOiJub25lIn0.e30." }));
    expect(request.get("error")).toBe("request_not_supported");
    expect(request.get("state")).toBe("st-123");
    const requestUri = locationParams(await authorize({ request_uri: "urn:example:abc" }));
    expect(requestUri.get("error")).toBe("request_uri_not_supported");
    const metadata = (await t.app.inject({ method: "GET", url: "/.well-known/openid-configuration" })).json();
    expect(metadata.request_parameter_supported).toBe(false);
    expect(metadata.request_uri_parameter_supported).toBe(false);
    // The claims parameter is not supported, and discovery says so (it is ignored like any unknown parameter).
    expect(metadata.claims_parameter_supported).toBe(false);
  });

  it("every supported algorithm's key is in the JWKS from the first start", async () => {
    const fresh = await buildOAuthApp();
    try {
      const jwks = (await fresh.app.inject({ method: "GET", url: "/jwks" })).json();
      expect(jwks.keys.map((k: { alg: string }) => k.alg).sort()).toEqual(["ES256", "EdDSA", "RS256"]);
    } finally {
      await fresh.close();
    }
  });

  it("revoking an access token answers unsupported_token_type (RFC 7009 2.2.1) rather than a 200 that does nothing", async () => {
    const { verifier, challenge } = pkce();
    const response = await t.app.inject({
      method: "GET",
      url: `/authorize?${authorizeQuery(client, {}, challenge)}`,
      headers: { cookie },
    });
    const tokens = (await redeem(t.app, client, locationParams(response).get("code") as string, verifier)).json();
    expect(decodeJwt(tokens.access_token).header.typ).toBe("at+jwt");
    const revoke = await t.app.inject({
      method: "POST",
      url: "/revoke",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ token: tokens.access_token }),
    });
    expect(revoke.statusCode).toBe(400);
    expect(revoke.json()).toEqual({
      error: "unsupported_token_type",
      error_description:
        "Access tokens cannot be revoked one by one; revoke the refresh token, which also ends its access tokens.",
    });
  });
});
