import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApp } from "../../helpers.ts";
import { buildOAuthApp, createUser, FORM, form, locationParams, pkce, sessionCookie } from "../helpers.ts";
import { registerPublicClient } from "./helpers.ts";

const SPA = "https://play.example";
const EVIL = "https://evil.example";
let t: TestApp;
let clientId: string;

beforeAll(async () => {
  t = await buildOAuthApp();
  clientId = (await registerPublicClient(t.app, { redirectUris: [`${SPA}/cb`], webOrigins: [SPA] })).clientId;
});
afterAll(async () => t.close());

const preflight = (url: string, origin: string, method = "POST") =>
  t.app.inject({
    method: "OPTIONS",
    url,
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": "content-type,dpop" },
  });

describe("CORS on credentialed endpoints", () => {
  it("preflight from a registered web origin: 204 with that origin, never * and never credentials", async () => {
    for (const [url, method] of [
      ["/token", "POST"],
      ["/userinfo", "GET"],
      ["/revoke", "POST"],
    ] as const) {
      const response = await preflight(url, SPA, method);
      expect(response.statusCode, url).toBe(204);
      expect(response.headers["access-control-allow-origin"], url).toBe(SPA);
      expect(response.headers["access-control-allow-methods"], url).toContain(method);
      expect(response.headers["access-control-allow-headers"], url).toBe("authorization, content-type, dpop");
      expect(response.headers["access-control-allow-credentials"], url).toBeUndefined();
      expect(response.headers.vary, url).toContain("Origin");
    }
  });

  it("attack: preflight and requests from an unregistered origin get no CORS headers", async () => {
    for (const origin of [EVIL, "null", `${SPA}.evil.example`, "http://play.example", `${SPA}:443`]) {
      const response = await preflight("/token", origin);
      expect(response.statusCode, origin).toBe(204);
      expect(response.headers["access-control-allow-origin"], origin).toBeUndefined();
      const post = await t.app.inject({
        method: "POST",
        url: "/token",
        headers: { ...FORM, origin },
        payload: form({ grant_type: "refresh_token", client_id: clientId, refresh_token: "tsr_x" }),
      });
      expect(post.headers["access-control-allow-origin"], origin).toBeUndefined();
    }
  });

  it("a token request from the client's registered origin carries the origin; another client's origin is refused", async () => {
    const other = await registerPublicClient(t.app, {
      redirectUris: ["https://other.example/cb"],
      webOrigins: ["https://other.example"],
    });
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const { verifier, challenge } = pkce();
    const query = new URLSearchParams({
      client_id: clientId,
      redirect_uri: `${SPA}/cb`,
      response_type: "code",
      scope: "openid",
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    const code = locationParams(
      await t.app.inject({ method: "GET", url: `/authorize?${query}`, headers: { cookie } }),
    ).get("code");
    const values = {
      grant_type: "authorization_code",
      client_id: clientId,
      code: code as string,
      redirect_uri: `${SPA}/cb`,
      code_verifier: verifier,
    };
    // From the other client's (registered) origin with this client's id: refused, code untouched.
    const wrongOrigin = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, origin: "https://other.example" },
      payload: form(values),
    });
    expect(wrongOrigin.statusCode).toBe(401);
    expect(wrongOrigin.json()).toEqual({
      error: "invalid_client",
      error_description: "This browser origin is not registered for this client.",
    });
    expect(wrongOrigin.headers["access-control-allow-origin"]).toBe("https://other.example");
    expect(other.clientId).not.toBe(clientId);
    const ok = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, origin: SPA },
      payload: form(values),
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers["access-control-allow-origin"]).toBe(SPA);
    expect(ok.headers["access-control-expose-headers"]).toBe("www-authenticate, dpop-nonce");
    const userinfo = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { origin: SPA, authorization: `Bearer ${ok.json().access_token}` },
    });
    expect(userinfo.statusCode).toBe(200);
    expect(userinfo.headers["access-control-allow-origin"]).toBe(SPA);
  });

  it("no CORS on /authorize; discovery and JWKS are public (*), preflight included", async () => {
    const authorize = await preflight("/authorize", SPA, "GET");
    expect(authorize.statusCode).toBe(405);
    expect(authorize.headers["access-control-allow-origin"]).toBeUndefined();
    for (const url of ["/.well-known/openid-configuration", "/jwks"]) {
      const options = await preflight(url, EVIL, "GET");
      expect(options.statusCode, url).toBe(204);
      expect(options.headers["access-control-allow-origin"], url).toBe("*");
      const get = await t.app.inject({ method: "GET", url, headers: { origin: EVIL } });
      expect(get.headers["access-control-allow-origin"], url).toBe("*");
      expect(get.headers["access-control-allow-credentials"], url).toBeUndefined();
    }
  });
});
