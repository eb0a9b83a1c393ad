import type { FastifyInstance } from "fastify";
import type { Actor } from "../../src/libraries/clients/index.ts";
import { basic, FORM, form, getCode, REDIRECT, redeem, type TestClient } from "../oauth/helpers.ts";

export const ACTOR: Actor = { actorId: null, meta: { ip: "127.0.0.1", userAgent: "vitest" }, via: "test" };

export const ROLES_SCOPE = "openid profile email offline_access roles";

export interface Tokens {
  access_token: string;
  id_token: string;
  refresh_token: string;
}

/** Signs the session in to a client with the `roles` scope (or `scope`) and returns the token response. */
export async function signInTo(
  app: FastifyInstance,
  client: TestClient,
  cookie: string,
  scope = ROLES_SCOPE,
): Promise<Tokens> {
  const { code, verifier } = await getCode(app, client, cookie, { scope, redirect_uri: REDIRECT });
  const response = await redeem(app, client, code, verifier);
  if (response.statusCode !== 200) throw new Error(`token answered ${response.statusCode}: ${response.body}`);
  return response.json() as Tokens;
}

export async function refreshTokens(app: FastifyInstance, client: TestClient, refreshToken: string): Promise<Tokens> {
  const response = await app.inject({
    method: "POST",
    url: "/token",
    headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
    payload: form({ grant_type: "refresh_token", refresh_token: refreshToken }),
  });
  if (response.statusCode !== 200) throw new Error(`refresh answered ${response.statusCode}: ${response.body}`);
  return response.json() as Tokens;
}

export function introspect(app: FastifyInstance, client: TestClient, token: string) {
  return app.inject({
    method: "POST",
    url: "/introspect",
    headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
    payload: form({ token }),
  });
}

/** The authorization claims of a JWT's payload (undefined when absent). */
export function authorizationOf(payload: Record<string, unknown>) {
  return { roles: payload.roles, permissions: payload.permissions, entitlements: payload.entitlements };
}
