import { clients } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotateClientSecret } from "../../../src/libraries/clients/index.ts";
import type { UserRow } from "../../../src/libraries/sessions.ts";
import { seedAdmin } from "../../admin/helpers.ts";
import type { TestApp } from "../../helpers.ts";
import {
  basic,
  buildOAuthApp,
  createUser,
  FORM,
  form,
  locationParams,
  pkce,
  registerClient,
  sessionCookie,
  tokensFor,
} from "../helpers.ts";
import { registerPublicClient } from "./helpers.ts";

let t: TestApp;
let user: UserRow;
let cookie: string;
let headers: Record<string, string>;

beforeAll(async () => {
  t = await buildOAuthApp();
  user = await createUser(t.app);
  cookie = (await sessionCookie(t.app, user)).cookie;
  headers = { authorization: (await seedAdmin(t.app)).authorization };
});
afterAll(async () => t.close());

/** /authorize for a public client with the given redirect URI; the code and its verifier. */
async function codeFor(clientId: string, redirectUri: string) {
  const { verifier, challenge } = pkce();
  const query = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: "code",
    scope: "openid offline_access",
    state: "s",
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  const response = await t.app.inject({ method: "GET", url: `/authorize?${query}`, headers: { cookie } });
  return { response, verifier, code: response.statusCode === 302 ? locationParams(response).get("code") : null };
}

const token = (values: Record<string, string>, headers: Record<string, string> = {}) =>
  t.app.inject({ method: "POST", url: "/token", headers: { ...FORM, ...headers }, payload: form(values) });

describe("registration", () => {
  it("admin API: token_endpoint_auth_method none registers a public client with no secret", async () => {
    const response = await t.app.inject({
      method: "POST",
      url: "/admin/api/v1/clients",
      headers,
      payload: {
        name: "Desktop game",
        redirect_uris: ["http://127.0.0.1/cb", "com.example.game:/oauth/cb"],
        token_endpoint_auth_method: "none",
        web_origins: ["https://play.example"],
        require_dpop: true,
      },
    });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body.client_secret).toBeUndefined();
    expect(body).toMatchObject({
      token_endpoint_auth_method: "none",
      redirect_uris: ["http://127.0.0.1/cb", "com.example.game:/oauth/cb"],
      web_origins: ["https://play.example"],
      require_dpop: true,
    });
    const [row] = await t.app.ctx.db.select().from(clients).where(eq(clients.clientId, body.client_id));
    expect(row?.clientSecretHash).toBeNull();
    // No secret to rotate.
    const rotate = await t.app.inject({
      method: "POST",
      url: `/admin/api/v1/clients/${body.client_id}/rotate-secret`,
      headers,
    });
    expect(rotate.statusCode).toBe(409);
    expect(rotate.json().error.code).toBe("CLIENT_IS_PUBLIC");
    await expect(rotateClientSecret(t.app.ctx, body.client_id)).rejects.toMatchObject({ code: "CLIENT_IS_PUBLIC" });
  });

  it("private-use schemes: reverse-domain only, for public clients only; nothing looser", async () => {
    const create = (redirect: string, extra: Record<string, unknown> = { token_endpoint_auth_method: "none" }) =>
      t.app.inject({
        method: "POST",
        url: "/admin/api/v1/clients",
        headers,
        payload: { name: "X", redirect_uris: [redirect], ...extra },
      });
    expect((await create("com.example.game:/cb")).statusCode).toBe(201);
    // A confidential client has no use for one.
    const confidential = await create("com.example.game:/cb", {});
    expect(confidential.statusCode).toBe(400);
    expect(confidential.json().error.code).toBe("INVALID_REDIRECT_URI");
    for (const bad of [
      "javascript:/alert(1)",
      "game:/cb",
      "com.example.game://host/cb",
      "com.example.game:/cb?x=1",
      "com.example.game:/cb#f",
      "com.example.game:/../cb",
      "Com.Example.Game:/cb",
      "com.example.*:/cb",
      "http://evil.example/cb",
      "data:text/html,hi",
    ]) {
      const response = await create(bad);
      expect(response.statusCode, bad).toBe(400);
      expect(response.json().error.fields[0].field, bad).toBe("redirect_uris.0");
    }
    // Web origins are exact origins.
    for (const origin of ["https://play.example/", "https://play.example/app", "*", "http://play.example"]) {
      const response = await create("http://127.0.0.1/cb", {
        token_endpoint_auth_method: "none",
        web_origins: [origin],
      });
      expect(response.statusCode, origin).toBe(400);
      expect(response.json().error.fields[0].field, origin).toBe("web_origins.0");
    }
    // A public client cannot have the secret-based direct sign-in.
    const direct = await create("http://127.0.0.1/cb", { token_endpoint_auth_method: "none", direct_sign_in: true });
    expect(direct.statusCode).toBe(400);
    expect(direct.json().error.fields[0].field).toBe("direct_sign_in");
  });
});

describe("RFC 8252 loopback redirects", () => {
  it("a registered loopback IP redirect matches on any port, for 127.0.0.1 and [::1]; the rest stays exact", async () => {
    const client = await registerPublicClient(t.app, {
      redirectUris: ["http://127.0.0.1/callback", "http://[::1]:8080/cb"],
    });
    for (const uri of [
      "http://127.0.0.1/callback",
      "http://127.0.0.1:4233/callback",
      "http://127.0.0.1:65535/callback",
      "http://[::1]/cb",
      "http://[::1]:51000/cb",
    ]) {
      const { response, code } = await codeFor(client.clientId, uri);
      expect(response.statusCode, uri).toBe(302);
      expect(response.headers.location, uri).toMatch(new RegExp(`^${uri.replace(/[[\]]/g, "\\$&")}\\?code=`));
      expect(code, uri).toBeTruthy();
    }
    for (const uri of [
      "http://127.0.0.1:4233/callback/",
      "http://127.0.0.1:4233/callbackx",
      "http://127.0.0.1:4233/callback?x=1",
      "http://127.0.0.1:65536/callback",
      "http://127.0.0.1:04233/callback",
      "http://localhost:4233/callback",
      "https://127.0.0.1:4233/callback",
      "http://127.0.0.2:4233/callback",
      "http://127.0.0.1:4233@evil.example/callback",
      "http://[::1]:4233/callback",
      "http://127.0.0.1:4233/CALLBACK",
    ]) {
      const { response } = await codeFor(client.clientId, uri);
      expect(response.statusCode, uri).toBe(400);
      expect(response.headers.location, uri).toBeUndefined();
    }
  });

  it("a private-use scheme redirect is matched exactly", async () => {
    const client = await registerPublicClient(t.app, { redirectUris: ["com.example.game:/oauth/cb"] });
    expect((await codeFor(client.clientId, "com.example.game:/oauth/cb")).response.statusCode).toBe(302);
    expect((await codeFor(client.clientId, "com.example.game:/oauth/cb2")).response.statusCode).toBe(400);
    expect((await codeFor(client.clientId, "com.example.game://oauth/cb")).response.statusCode).toBe(400);
  });
});

describe("token endpoint for public clients", () => {
  it("client_id alone redeems a code (PKCE required) and rotates the refresh token with reuse detection", async () => {
    const client = await registerPublicClient(t.app);
    const redirect = "http://127.0.0.1:5555/callback";
    const { code, verifier } = await codeFor(client.clientId, redirect);
    const redeemed = await token({
      grant_type: "authorization_code",
      client_id: client.clientId,
      code: code as string,
      redirect_uri: redirect,
      code_verifier: verifier,
    });
    expect(redeemed.statusCode).toBe(200);
    const first = redeemed.json();
    expect(first.token_type).toBe("Bearer");
    const rotated = await token({
      grant_type: "refresh_token",
      client_id: client.clientId,
      refresh_token: first.refresh_token,
    });
    expect(rotated.statusCode).toBe(200);
    const second = rotated.json().refresh_token;
    // The first token again, after the grace window: reuse, the session ends.
    t.clock.advance(t.app.ctx.config.tokens.refreshGraceSeconds + 1);
    const reused = await token({
      grant_type: "refresh_token",
      client_id: client.clientId,
      refresh_token: first.refresh_token,
    });
    expect(reused.statusCode).toBe(400);
    expect(reused.json()).toEqual({
      error: "invalid_grant",
      error_description: "The refresh token was already used; the session has been ended.",
    });
    const after = await token({ grant_type: "refresh_token", client_id: client.clientId, refresh_token: second });
    expect(after.statusCode).toBe(400);
    cookie = (await sessionCookie(t.app, user)).cookie;
  });

  it("PKCE is required of a public client: no code_challenge, no code; a wrong verifier, no tokens", async () => {
    const client = await registerPublicClient(t.app);
    const query = new URLSearchParams({
      client_id: client.clientId,
      redirect_uri: "http://127.0.0.1/callback",
      response_type: "code",
      scope: "openid",
    });
    const response = await t.app.inject({ method: "GET", url: `/authorize?${query}`, headers: { cookie } });
    expect(locationParams(response).get("error")).toBe("invalid_request");
    const { code } = await codeFor(client.clientId, "http://127.0.0.1/callback");
    const wrong = await token({
      grant_type: "authorization_code",
      client_id: client.clientId,
      code: code as string,
      redirect_uri: "http://127.0.0.1/callback",
      code_verifier: pkce().verifier,
    });
    expect(wrong.json().error).toBe("invalid_grant");
  });

  it("attack: a public client presenting another client's refresh token gets invalid_grant, and the chain lives on", async () => {
    const victim = await registerClient(t.app, { name: "Victim web app" });
    const attacker = await registerPublicClient(t.app, { name: "Attacker" });
    const victimTokens = await tokensFor(t.app, victim, cookie);
    const stolen = await token({
      grant_type: "refresh_token",
      client_id: attacker.clientId,
      refresh_token: victimTokens.refresh_token,
    });
    expect(stolen.statusCode).toBe(400);
    expect(stolen.json()).toEqual({
      error: "invalid_grant",
      error_description: "The refresh token was not issued to this client.",
    });
    // The victim client (with its secret) still refreshes: nothing was rotated or revoked.
    const ok = await token(
      { grant_type: "refresh_token", refresh_token: victimTokens.refresh_token },
      { authorization: basic(victim.clientId, victim.secret) },
    );
    expect(ok.statusCode).toBe(200);
  });

  it("a confidential client's client_id without its secret, or a public client with a made-up secret: invalid_client", async () => {
    const confidential = await registerClient(t.app);
    const tokens = await tokensFor(t.app, confidential, cookie);
    const noSecret = await token({
      grant_type: "refresh_token",
      client_id: confidential.clientId,
      refresh_token: tokens.refresh_token,
    });
    expect(noSecret.statusCode).toBe(401);
    expect(noSecret.json().error).toBe("invalid_client");
    const pub = await registerPublicClient(t.app);
    const withSecret = await token(
      { grant_type: "refresh_token", refresh_token: "tsr_x" },
      { authorization: basic(pub.clientId, "") },
    );
    expect(withSecret.statusCode).toBe(401);
    // /introspect needs a real secret: a public client cannot use it.
    const introspect = await t.app.inject({
      method: "POST",
      url: "/introspect",
      headers: FORM,
      payload: form({ client_id: pub.clientId, token: "tsr_x" }),
    });
    expect(introspect.statusCode).toBe(401);
    expect(introspect.json().error).toBe("invalid_client");
  });

  it("discovery offers none", async () => {
    const metadata = (await t.app.inject({ method: "GET", url: "/.well-known/openid-configuration" })).json();
    expect(metadata.token_endpoint_auth_methods_supported).toEqual([
      "client_secret_basic",
      "client_secret_post",
      "none",
    ]);
    expect(metadata.dpop_signing_alg_values_supported).toContain("ES256");
  });
});
