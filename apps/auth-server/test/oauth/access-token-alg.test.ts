import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import type { TestApp } from "../helpers.ts";
import {
  basic,
  buildOAuthApp,
  createUser,
  decodeJwt,
  FORM,
  form,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "./helpers.ts";

/**
 * ACCESS_TOKEN_SIGNING_ALG: Tessera's access tokens (`at+jwt`) signed with their own algorithm, ID tokens unchanged
 * (SIGNING_ALG / the client's id_token_signed_response_alg), and the access token still accepted by every endpoint
 * that verifies it.
 */
describe("ACCESS_TOKEN_SIGNING_ALG", () => {
  it("defaults to ES256 whatever SIGNING_ALG says, and refuses an unknown algorithm by name", () => {
    expect(testConfig({}).tokens.accessTokenSigningAlg).toBe("ES256");
    expect(testConfig({ SIGNING_ALG: "EdDSA" }).tokens.accessTokenSigningAlg).toBe("ES256");
    expect(testConfig({ ACCESS_TOKEN_SIGNING_ALG: "RS256" }).tokens.accessTokenSigningAlg).toBe("RS256");
    expect(testConfig({ ACCESS_TOKEN_SIGNING_ALG: "EdDSA" }).tokens.accessTokenSigningAlg).toBe("EdDSA");
    expect(() => testConfig({ ACCESS_TOKEN_SIGNING_ALG: "HS256" })).toThrow(/ACCESS_TOKEN_SIGNING_ALG/);
  });

  describe.each<{ setting: string; env: Record<string, string>; alg: string; jwk: Record<string, string> }>([
    { setting: "unset (the default)", env: {}, alg: "ES256", jwk: { kty: "EC", crv: "P-256", alg: "ES256" } },
    {
      setting: "set to RS256",
      env: { ACCESS_TOKEN_SIGNING_ALG: "RS256" },
      alg: "RS256",
      jwk: { kty: "RSA", alg: "RS256" },
    },
  ])("$setting: access tokens $alg while ID tokens stay RS256", ({ env, alg, jwk }) => {
    let t: TestApp;
    let client: TestClient;
    beforeAll(async () => {
      t = await buildOAuthApp({ ...env, RATE_LIMIT_ENABLED: "false" });
      client = await registerClient(t.app, {
        grantTypes: ["authorization_code", "refresh_token", "client_credentials"],
      });
    });
    afterAll(async () => t.close());

    it("signs access tokens from code, refresh and client_credentials with it, and /userinfo and /introspect accept them", async () => {
      const user = await createUser(t.app);
      const { cookie } = await sessionCookie(t.app, user);
      const tokens = await tokensFor(t.app, client, cookie);
      expect(decodeJwt(tokens.access_token).header).toMatchObject({ alg, typ: "at+jwt" });
      expect(decodeJwt(tokens.id_token).header).toMatchObject({ alg: "RS256" });

      const rotated = await refresh(t.app, client, tokens.refresh_token);
      expect(rotated.statusCode).toBe(200);
      const { access_token: accessToken, id_token: idToken } = rotated.json();
      expect(decodeJwt(accessToken).header).toMatchObject({ alg, typ: "at+jwt" });
      expect(decodeJwt(idToken).header).toMatchObject({ alg: "RS256" });

      const userinfo = await t.app.inject({
        method: "GET",
        url: "/userinfo",
        headers: { authorization: `Bearer ${accessToken}` },
      });
      expect(userinfo.statusCode).toBe(200);
      expect(userinfo.json()).toMatchObject({ sub: user.id });

      const introspection = await t.app.inject({
        method: "POST",
        url: "/introspect",
        headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
        payload: form({ token: accessToken }),
      });
      expect(introspection.statusCode).toBe(200);
      expect(introspection.json()).toMatchObject({ active: true, sub: user.id, token_type: "Bearer" });

      // The key that signed it is published with its algorithm, for resource servers that verify on their own.
      const jwks = (await t.app.inject({ method: "GET", url: "/jwks" })).json() as { keys: { kid: string }[] };
      const { kid } = decodeJwt(accessToken).header as { kid: string };
      expect(jwks.keys.find((key) => key.kid === kid)).toMatchObject(jwk);

      const machine = await t.app.inject({
        method: "POST",
        url: "/token",
        headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
        payload: form({ grant_type: "client_credentials" }),
      });
      expect(machine.statusCode).toBe(200);
      expect(decodeJwt(machine.json().access_token).header).toMatchObject({ alg, typ: "at+jwt" });
      const machineIntrospection = await t.app.inject({
        method: "POST",
        url: "/introspect",
        headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
        payload: form({ token: machine.json().access_token }),
      });
      expect(machineIntrospection.json()).toMatchObject({ active: true, client_id: client.clientId });
    });
  });
});
