import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import * as oidc from "openid-client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import {
  assignRole,
  createRole,
  grantEntitlement,
  revokeEntitlement,
  unassignRole,
} from "../../src/libraries/authorization/index.ts";
import { build } from "../contract.ts";
import { createUser, registerClient, sessionCookie } from "../oauth/helpers.ts";
import { ACTOR } from "./helpers.ts";

/**
 * Two relying parties driven by an unmodified OpenID Connect client library (openid-client v6) against a listening
 * Tessera, on one sign-in session: discovery advertises the roles scope; the game's ID token and userinfo carry its
 * roles and permissions, the shop's carry none of them; the unlimited entitlement reaches both; revoking the role and
 * the entitlement shows at each app's next refresh.
 */
const GAME_CB = "https://game.example/cb";
const SHOP_CB = "https://shop.example/cb";
const SCOPE = "openid profile email offline_access roles";

let app: FastifyInstance;
let close: () => Promise<void>;
let issuer: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  const database = await createTestDatabase();
  app = await build(testConfig({ ISSUER: issuer, RATE_LIMIT_ENABLED: "false" }), { database });
  await app.listen({ host: "127.0.0.1", port });
  close = async () => {
    await app.close();
    await database.close();
  };
});
afterAll(async () => close());

async function relyingParty(clientId: string, secret: string) {
  return oidc.discovery(new URL(issuer), clientId, undefined, oidc.ClientSecretBasic(secret), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** One authorization-code flow with the session cookie (already signed in: no page), validated by openid-client. */
async function signInWith(config: oidc.Configuration, redirectUri: string, cookie: string) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  const response = await fetch(url, { redirect: "manual", headers: { cookie } });
  expect(response.status).toBe(302);
  return oidc.authorizationCodeGrant(config, new URL(response.headers.get("location") as string), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
}

const pick = (claims: Record<string, unknown> | undefined) => ({
  roles: claims?.roles,
  permissions: claims?.permissions,
  entitlements: claims?.entitlements,
});

it("two apps, one session: each gets only its own roles; changes show at the next refresh", async () => {
  const game = await registerClient(app, { name: "Game", redirectUris: [GAME_CB] });
  const shop = await registerClient(app, { name: "Shop", redirectUris: [SHOP_CB] });
  const user = await createUser(app);
  const moderator = await createRole(
    app.ctx,
    game.clientId,
    { name: "moderator", permissions: ["chat:mute", "chat:kick"] },
    ACTOR,
  );
  await createRole(app.ctx, shop.clientId, { name: "moderator", permissions: ["reviews:delete"] }, ACTOR);
  await assignRole(app.ctx, user.id, { roleId: moderator.id }, ACTOR);
  await grantEntitlement(app.ctx, user.id, { name: "premium" }, ACTOR);
  const { cookie } = await sessionCookie(app, user);

  const gameRp = await relyingParty(game.clientId, game.secret);
  const shopRp = await relyingParty(shop.clientId, shop.secret);
  expect(gameRp.serverMetadata().scopes_supported).toContain("roles");

  const gameTokens = await signInWith(gameRp, GAME_CB, cookie);
  expect(pick(gameTokens.claims())).toEqual({
    roles: ["moderator"],
    permissions: ["chat:kick", "chat:mute"],
    entitlements: ["premium"],
  });
  const gameInfo = await oidc.fetchUserInfo(gameRp, gameTokens.access_token, user.id);
  expect(pick(gameInfo)).toEqual(pick(gameTokens.claims()));

  // The shop has a role of the same name, but the user does not have it: nothing of the game's leaks here.
  const shopTokens = await signInWith(shopRp, SHOP_CB, cookie);
  expect(pick(shopTokens.claims())).toEqual({ roles: [], permissions: [], entitlements: ["premium"] });
  expect(pick(await oidc.fetchUserInfo(shopRp, shopTokens.access_token, user.id))).toEqual({
    roles: [],
    permissions: [],
    entitlements: ["premium"],
  });

  await unassignRole(app.ctx, user.id, moderator.id, ACTOR);
  await revokeEntitlement(app.ctx, user.id, "premium", ACTOR);
  const gameNext = await oidc.refreshTokenGrant(gameRp, gameTokens.refresh_token as string);
  expect(pick(gameNext.claims())).toEqual({ roles: [], permissions: [], entitlements: [] });
  const shopNext = await oidc.refreshTokenGrant(shopRp, shopTokens.refresh_token as string);
  expect(pick(shopNext.claims())).toEqual({ roles: [], permissions: [], entitlements: [] });
  const introspection = await oidc.tokenIntrospection(gameRp, gameNext.access_token);
  expect(pick(introspection)).toEqual({ roles: [], permissions: [], entitlements: [] });
});
