import { decodeJwt } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, disableClient, updateClient } from "../../src/libraries/clients/index.ts";
import type { TestApp } from "../helpers.ts";
import { basic, buildOAuthApp, FORM, form, registerClient, type TestClient } from "../oauth/helpers.ts";
import { discover } from "./helpers.ts";

describe("client_credentials", () => {
  let t: TestApp;
  let server: TestClient;
  let other: TestClient;

  beforeAll(async () => {
    t = await buildOAuthApp();
    server = await registerClient(t.app, {
      name: "Game Server",
      grantTypes: ["client_credentials"],
      allowedScopes: ["openid", "offline_access", "leaderboard:write", "matches:read"],
    });
    other = await registerClient(t.app, { grantTypes: ["client_credentials"] });
  });
  afterAll(() => t.close());

  const token = (client: TestClient, extra: Record<string, string> = {}) =>
    t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ grant_type: "client_credentials", ...extra }),
    });
  const introspect = (client: TestClient, value: string) =>
    t.app.inject({
      method: "POST",
      url: "/introspect",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ token: value }),
    });

  it("is advertised in discovery and works with oauth4webapi", async () => {
    const { as, options } = await discover(t.app);
    expect(as.grant_types_supported).toContain("client_credentials");
    const client: oauth.Client = { client_id: server.clientId };
    const result = await oauth.processClientCredentialsResponse(
      as,
      client,
      await oauth.clientCredentialsGrantRequest(
        as,
        client,
        oauth.ClientSecretPost(server.secret),
        new URLSearchParams({ scope: "matches:read" }),
        options,
      ),
    );
    expect(result.scope).toBe("matches:read");
    expect(result.refresh_token).toBeUndefined();
    expect(result.id_token).toBeUndefined();
  });

  it("issues a token for the client itself: sub = aud = client_id, allowed scopes without openid/offline_access", async () => {
    const res = await token(server);
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in", "scope", "token_type"]);
    expect(body.scope).toBe("leaderboard:write matches:read");
    const claims = decodeJwt(body.access_token);
    expect(claims).toMatchObject({ sub: server.clientId, aud: server.clientId, client_id: server.clientId });
    expect(claims.sid).toBeUndefined();
  });

  it("refuses openid, offline_access and scopes the client is not allowed", async () => {
    for (const scope of ["openid", "offline_access", "admin", "matches:read admin"]) {
      const res = await token(server, { scope });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: "invalid_scope" });
    }
  });

  it("must be enabled per client", async () => {
    const web = await registerClient(t.app);
    const res = await token(web);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: "unauthorized_client" });
  });

  it("a wrong secret is invalid_client", async () => {
    const res = await token({ ...server, secret: "nope" });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: "invalid_client" });
  });

  it("introspection: active for its own client with client_id and no user; inactive for others and at /userinfo", async () => {
    const access = (await token(server, { scope: "matches:read" })).json().access_token as string;
    const own = await introspect(server, access);
    expect(own.statusCode).toBe(200);
    const body = own.json();
    expect(body).toMatchObject({
      active: true,
      client_id: server.clientId,
      sub: server.clientId,
      scope: "matches:read",
    });
    expect(body.sid).toBeUndefined();
    expect((await introspect(other, access)).json()).toEqual({ active: false });
    const userinfo = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${access}` },
    });
    expect(userinfo.statusCode).toBe(401);
  });

  it("a disabled client's tokens turn inactive", async () => {
    const temp = await registerClient(t.app, { grantTypes: ["client_credentials"], allowedScopes: ["openid", "x"] });
    const access = (await token(temp)).json().access_token as string;
    expect((await introspect(temp, access)).json()).toMatchObject({ active: true });
    await disableClient(t.app.ctx, temp.clientId);
    // The disabled client can no longer authenticate; its token is no longer active for anyone.
    expect((await introspect(temp, access)).statusCode).toBe(401);
    expect((await introspect(server, access)).json()).toEqual({ active: false });
  });

  it("a service without redirect URIs can be registered only without authorization_code", async () => {
    const { client } = await createClient(t.app.ctx, {
      name: "Matchmaker",
      redirectUris: [],
      grantTypes: ["client_credentials"],
    });
    expect(client.redirectUris).toEqual([]);
    await expect(createClient(t.app.ctx, { name: "Web", redirectUris: [] })).rejects.toMatchObject({
      code: "VALIDATION_FAILED",
      fields: [{ field: "redirectUris", message: "must have at least one redirect URI" }],
    });
    await expect(updateClient(t.app.ctx, server.clientId, { redirectUris: [] })).rejects.toMatchObject({
      code: "VALIDATION_FAILED",
    });
  });
});
