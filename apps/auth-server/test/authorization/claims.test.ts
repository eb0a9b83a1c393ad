import { entitlements, roles, userEntitlements } from "@tessera/db";
import { eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assignRole,
  createRole,
  ensureEntitlements,
  grantEntitlement,
  revokeEntitlement,
  unassignRole,
  updateRole,
} from "../../src/libraries/authorization/index.ts";
import { bumpCatalogVersion } from "../../src/queries/authorization/catalog.ts";
import { notifyClaimsChange } from "../../src/queries/owners-cache.ts";
import type { TestApp } from "../helpers.ts";
import {
  buildOAuthApp,
  createUser,
  decodeJwt,
  REDIRECT,
  registerClient,
  sessionCookie,
  type TestClient,
} from "../oauth/helpers.ts";
import { ACTOR, authorizationOf, introspect, refreshTokens, signInTo } from "./helpers.ts";

/**
 * The claims two apps get for one user: the game's roles and permissions never reach the shop, an entitlement without
 * an app limit reaches both, and every change (revoke, rename, expiry, grants written by others) shows at the next
 * refresh.
 */
let t: TestApp;
let app: FastifyInstance;
let game: TestClient;
let shop: TestClient;
let userId: string;
let cookie: string;
let moderatorId: string;

const idClaims = (tokens: { id_token: string }) => authorizationOf(decodeJwt(tokens.id_token).payload);

beforeAll(async () => {
  t = await buildOAuthApp();
  app = t.app;
  game = await registerClient(app, { name: "Game", redirectUris: [REDIRECT] });
  shop = await registerClient(app, { name: "Shop", redirectUris: [REDIRECT] });
  const user = await createUser(app);
  userId = user.id;
  cookie = (await sessionCookie(app, user)).cookie;
  // The same permission name in the shop must never be confused with the game's.
  await createRole(app.ctx, shop.clientId, { name: "clerk", permissions: ["chat:mute", "orders:read"] }, ACTOR);
  const moderator = await createRole(
    app.ctx,
    game.clientId,
    { name: "moderator", permissions: ["chat:mute", "chat:kick"] },
    ACTOR,
  );
  moderatorId = moderator.id;
  await assignRole(app.ctx, userId, { roleId: moderatorId }, ACTOR);
  await grantEntitlement(app.ctx, userId, { name: "premium" }, ACTOR);
});
afterAll(async () => t.close());

describe("claims per app", () => {
  it("gives the game its roles and permissions, the shop neither, and both the unlimited entitlement", async () => {
    const gameTokens = await signInTo(app, game, cookie);
    expect(idClaims(gameTokens)).toEqual({
      roles: ["moderator"],
      permissions: ["chat:kick", "chat:mute"],
      entitlements: ["premium"],
    });
    const shopTokens = await signInTo(app, shop, cookie);
    expect(idClaims(shopTokens)).toEqual({ roles: [], permissions: [], entitlements: ["premium"] });
  });

  it("carries the same claims in /userinfo and /introspect (access and refresh tokens)", async () => {
    const tokens = await signInTo(app, game, cookie);
    const expected = { roles: ["moderator"], permissions: ["chat:kick", "chat:mute"], entitlements: ["premium"] };
    const info = await app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(info.statusCode).toBe(200);
    expect(authorizationOf(info.json())).toEqual(expected);
    const access = await introspect(app, game, tokens.access_token);
    expect(access.json()).toMatchObject({ active: true, ...expected });
    const refresh = await introspect(app, game, tokens.refresh_token);
    expect(refresh.json()).toMatchObject({ active: true, token_type: "refresh_token", ...expected });
    // The shop introspecting the game's token learns nothing at all.
    expect((await introspect(app, shop, tokens.access_token)).json()).toEqual({ active: false });
  });

  it("issues no authorization claims without the roles scope", async () => {
    const tokens = await signInTo(app, game, cookie, "openid profile email offline_access");
    expect(idClaims(tokens)).toEqual({ roles: undefined, permissions: undefined, entitlements: undefined });
    const info = await app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(authorizationOf(info.json())).toEqual({ roles: undefined, permissions: undefined, entitlements: undefined });
  });

  it("gives a global role to every app, and an app-limited entitlement only to that app", async () => {
    const tester = await createRole(app.ctx, null, { name: "beta-tester" }, ACTOR);
    await assignRole(app.ctx, userId, { roleId: tester.id }, ACTOR);
    await grantEntitlement(app.ctx, userId, { name: "no-ads", clientIds: [shop.clientId] }, ACTOR);
    expect(idClaims(await signInTo(app, game, cookie))).toEqual({
      roles: ["beta-tester", "moderator"],
      permissions: ["chat:kick", "chat:mute"],
      entitlements: ["premium"],
    });
    expect(idClaims(await signInTo(app, shop, cookie))).toEqual({
      roles: ["beta-tester"],
      permissions: [],
      entitlements: ["no-ads", "premium"],
    });
    await unassignRole(app.ctx, userId, tester.id, ACTOR);
    await revokeEntitlement(app.ctx, userId, "no-ads", ACTOR);
  });
});

describe("changes take effect at the next refresh", () => {
  it("drops a revoked role and a revoked entitlement", async () => {
    const tokens = await signInTo(app, game, cookie);
    expect(idClaims(tokens).roles).toEqual(["moderator"]);
    await unassignRole(app.ctx, userId, moderatorId, ACTOR);
    await revokeEntitlement(app.ctx, userId, "premium", ACTOR);
    const next = await refreshTokens(app, game, tokens.refresh_token);
    expect(idClaims(next)).toEqual({ roles: [], permissions: [], entitlements: [] });
    await assignRole(app.ctx, userId, { roleId: moderatorId }, ACTOR);
    await grantEntitlement(app.ctx, userId, { name: "premium" }, ACTOR);
    expect(idClaims(await refreshTokens(app, game, next.refresh_token)).roles).toEqual(["moderator"]);
  });

  it("drops an expired assignment and grant without any sweep", async () => {
    const helper = await createRole(app.ctx, game.clientId, { name: "helper", permissions: ["chat:warn"] }, ACTOR);
    const soon = new Date(t.clock.now().getTime() + 60_000).toISOString();
    await assignRole(app.ctx, userId, { roleId: helper.id, expiresAt: soon }, ACTOR);
    await grantEntitlement(app.ctx, userId, { name: "weekend-pass", expiresAt: soon }, ACTOR);
    const tokens = await signInTo(app, game, cookie);
    expect(idClaims(tokens)).toEqual({
      roles: ["helper", "moderator"],
      permissions: ["chat:kick", "chat:mute", "chat:warn"],
      entitlements: ["premium", "weekend-pass"],
    });
    t.clock.advance(61);
    expect(idClaims(await refreshTokens(app, game, tokens.refresh_token))).toEqual({
      roles: ["moderator"],
      permissions: ["chat:kick", "chat:mute"],
      entitlements: ["premium"],
    });
  });

  it("carries a renamed role's new name; its id never changes", async () => {
    const tokens = await signInTo(app, game, cookie);
    const renamed = await updateRole(app.ctx, game.clientId, moderatorId, { name: "chat-moderator" }, ACTOR);
    expect(renamed.id).toBe(moderatorId);
    const next = await refreshTokens(app, game, tokens.refresh_token);
    expect(idClaims(next).roles).toEqual(["chat-moderator"]);
    await updateRole(app.ctx, game.clientId, moderatorId, { name: "moderator" }, ACTOR);
    expect(idClaims(await refreshTokens(app, game, next.refresh_token)).roles).toEqual(["moderator"]);
  });

  it("sees a change made elsewhere (another instance, the CLI) through the catalog version", async () => {
    const tokens = await signInTo(app, game, cookie);
    // Another instance renames the role: its rows change and the version moves; this instance's memory does not.
    await app.ctx.db.transaction(async (tx) => {
      await tx.update(roles).set({ name: "mod" }).where(eq(roles.id, moderatorId));
      await bumpCatalogVersion(tx, t.clock.now());
    });
    const next = await refreshTokens(app, game, tokens.refresh_token);
    expect(idClaims(next).roles).toEqual(["mod"]);
    await updateRole(app.ctx, game.clientId, moderatorId, { name: "moderator" }, ACTOR);
  });

  it("counts purchase grants, with entitlements created by ensureEntitlements or written by other code", async () => {
    const tokens = await signInTo(app, shop, cookie);
    const ids = await app.ctx.db.transaction(async (tx) => {
      const ids = await ensureEntitlements(app.ctx, tx, ["season-pass-3"]);
      await tx.insert(userEntitlements).values({
        userId,
        entitlementId: ids.get("season-pass-3") as string,
        source: "purchase",
        sourceRef: "purchase-1",
      });
      return ids;
    });
    expect(ids.get("season-pass-3")).toMatch(/^[0-9a-f-]{36}$/);
    const next = await refreshTokens(app, shop, tokens.refresh_token);
    expect(idClaims(next).entitlements).toEqual(["premium", "season-pass-3"]);
    // A catalog row written without bumping the version is still picked up (the unknown id makes the catalog reload).
    // A grant written by other code must still tell the claims cache (queries/owners-cache.ts), as every write path
    // of Tessera's does; the catalog row need not.
    const [row] = await app.ctx.db.insert(entitlements).values({ name: "gift" }).returning();
    await app.ctx.db.transaction(async (tx) => {
      await tx
        .insert(userEntitlements)
        .values({ userId, entitlementId: row?.id as string, source: "purchase", sourceRef: "purchase-2" });
      await notifyClaimsChange(tx, userId);
    });
    const third = await refreshTokens(app, shop, next.refresh_token);
    expect(idClaims(third).entitlements).toEqual(["gift", "premium", "season-pass-3"]);
    // The admin revoke removes only the admin grant: purchases keep theirs.
    await grantEntitlement(app.ctx, userId, { name: "gift" }, ACTOR);
    await revokeEntitlement(app.ctx, userId, "gift", ACTOR);
    expect(idClaims(await refreshTokens(app, shop, third.refresh_token)).entitlements).toEqual([
      "gift",
      "premium",
      "season-pass-3",
    ]);
  });
});
