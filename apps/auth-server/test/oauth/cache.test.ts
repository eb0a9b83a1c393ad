import { createDatabase } from "@tessera/db";
import { createTestDatabase, usingPostgres } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import {
  assignRole,
  createRole,
  ensureEntitlements,
  grantEntitlement,
  revokeEntitlement,
  unassignRole,
  updateRole,
} from "../../src/libraries/authorization/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { endSessions } from "../../src/libraries/sessions.ts";
import { claimsCacheHolds, ownersCacheHolds } from "../../src/queries/owners-cache.ts";
import { updateUser } from "../../src/queries/users.ts";
import { ACTOR, signInTo } from "../authorization/helpers.ts";
import { build } from "../contract.ts";
import {
  basic,
  createUser,
  decodeJwt,
  FORM,
  form,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "./helpers.ts";

/**
 * /userinfo and /introspect read session, user, client and chain through a per-instance cache (queries/owners-cache.ts).
 * A change takes effect at once on the instance that made it, and — through NOTIFY at commit — within a second on every
 * other instance of the same PostgreSQL database (its cache entries would otherwise live OWNERS_CACHE_TTL_MS = 5 s).
 */
const clock = new TestClock();
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let second: Awaited<ReturnType<typeof createDatabase>> | undefined;
let a: FastifyInstance;
let b: FastifyInstance | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  a = await build(testConfig(), { database, clock });
  await a.ready();
  if (usingPostgres() && database.url) {
    // A second instance: its own app, connection pool and listener on the same PostgreSQL database.
    second = await createDatabase({ url: database.url });
    b = await build(testConfig(), { database: second, clock });
    await b.ready();
  }
}, 120_000);
afterAll(async () => {
  await b?.close();
  await second?.close();
  await a.close();
  await database.close();
});

function userinfo(app: FastifyInstance, accessToken: string) {
  return app.inject({ method: "GET", url: "/userinfo", headers: { authorization: `Bearer ${accessToken}` } });
}

function introspect(app: FastifyInstance, client: TestClient, token: string) {
  return app.inject({
    method: "POST",
    url: "/introspect",
    headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
    payload: form({ token }),
  });
}

/** Polls until `check` holds or `withinMs` passes; returns the time it took (or throws). */
async function within(withinMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > withinMs) throw new Error(`not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Until the app's listener is subscribed (PostgreSQL; at once on PGlite). */
async function cacheInUse(app: FastifyInstance): Promise<void> {
  await within(10_000, async () => ownersCacheHolds(app.ctx.db, "-", "-").usable);
}

async function signedIn(app: FastifyInstance) {
  const user = await createUser(app, { displayName: "Ada Lovelace" });
  const client = await registerClient(app);
  const { session, cookie } = await sessionCookie(app, user);
  const tokens = await tokensFor(app, client, cookie);
  return { user, client, session, tokens, sid: String(decodeJwt(tokens.access_token).payload.sid) };
}

/** Signed in to a new app with the roles scope, holding a role of that app. */
async function signedInWithRole(app: FastifyInstance) {
  const user = await createUser(app);
  const client = await registerClient(app);
  const role = await createRole(app.ctx, client.clientId, { name: "moderator", permissions: ["chat:mute"] }, ACTOR);
  await assignRole(app.ctx, user.id, { roleId: role.id }, ACTOR);
  const { cookie } = await sessionCookie(app, user);
  const tokens = await signInTo(app, client, cookie);
  return { user, client, clientRowId: client.client.id, role, tokens };
}

const claimsOf = async (app: FastifyInstance, accessToken: string) => {
  const { roles, permissions, entitlements } = (await userinfo(app, accessToken)).json();
  return { roles, permissions, entitlements };
};

describe("access-token owners cache, one instance", () => {
  it("serves /userinfo from the cache, and logout, a profile change or a revoked chain apply at once", async () => {
    await cacheInUse(a);
    const { user, client, session, tokens, sid } = await signedIn(a);
    expect((await userinfo(a, tokens.access_token)).statusCode).toBe(200);
    expect(ownersCacheHolds(a.ctx.db, sid, client.clientId).held).toBe(true);

    await updateUser(a.ctx.db, user.id, { displayName: "Ada King", updatedAt: clock.now() });
    expect((await userinfo(a, tokens.access_token)).json().name).toBe("Ada King");
    expect((await introspect(a, client, tokens.access_token)).json().active).toBe(true);

    const revoked = await a.inject({
      method: "POST",
      url: "/revoke",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ token: tokens.refresh_token }),
    });
    expect(revoked.statusCode).toBe(200);
    expect((await userinfo(a, tokens.access_token)).statusCode).toBe(401);
    expect((await introspect(a, client, tokens.access_token)).json()).toEqual({ active: false });
    expect(session.id).toBe(sid);
  });

  it("logout stops the access token at once on the same instance", async () => {
    const { session, tokens } = await signedIn(a);
    expect((await userinfo(a, tokens.access_token)).statusCode).toBe(200);
    await a.ctx.db.transaction((tx) => endSessions(a.ctx, tx, { ids: [session.id] }, "logout"));
    expect((await userinfo(a, tokens.access_token)).statusCode).toBe(401);
  });

  it("a rolled-back end of session leaves the token working", async () => {
    const { session, tokens } = await signedIn(a);
    expect((await userinfo(a, tokens.access_token)).statusCode).toBe(200);
    await expect(
      a.ctx.db.transaction(async (tx) => {
        await endSessions(a.ctx, tx, { ids: [session.id] }, "logout");
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect((await userinfo(a, tokens.access_token)).statusCode).toBe(200);
  });
});

describe("authorization claims cache, one instance", () => {
  it("serves /userinfo's claims from the cache; assignments, grants and catalog changes apply at once", async () => {
    await cacheInUse(a);
    const { user, client, clientRowId, role, tokens } = await signedInWithRole(a);
    expect(await claimsOf(a, tokens.access_token)).toEqual({
      roles: ["moderator"],
      permissions: ["chat:mute"],
      entitlements: [],
    });
    expect(claimsCacheHolds(a.ctx.db, user.id, clientRowId)).toBe(true);

    await grantEntitlement(a.ctx, user.id, { name: "cache-pass" }, ACTOR);
    expect((await claimsOf(a, tokens.access_token)).entitlements).toEqual(["cache-pass"]);
    await updateRole(a.ctx, client.clientId, role.id, { name: "mod" }, ACTOR);
    expect((await claimsOf(a, tokens.access_token)).roles).toEqual(["mod"]);
    await revokeEntitlement(a.ctx, user.id, "cache-pass", ACTOR);
    await unassignRole(a.ctx, user.id, role.id, ACTOR);
    expect(await claimsOf(a, tokens.access_token)).toEqual({ roles: [], permissions: [], entitlements: [] });
  });

  it("does not serve cached claims past the expiry of an assignment they came from", async () => {
    await cacheInUse(a);
    const { user, client, tokens } = await signedInWithRole(a);
    const helper = await createRole(a.ctx, client.clientId, { name: "helper" }, ACTOR);
    const soon = new Date(clock.now().getTime() + 60_000).toISOString();
    await assignRole(a.ctx, user.id, { roleId: helper.id, expiresAt: soon }, ACTOR);
    expect((await claimsOf(a, tokens.access_token)).roles).toEqual(["helper", "moderator"]);
    clock.advance(61);
    try {
      expect((await claimsOf(a, tokens.access_token)).roles).toEqual(["moderator"]);
    } finally {
      clock.advance(-61);
    }
  });
});

describe.skipIf(!usingPostgres())("authorization claims cache, two instances on one PostgreSQL database", () => {
  it("a role assigned, an entitlement granted or a role renamed on A shows in B's /userinfo within a second", async () => {
    if (!b) throw new Error("no second instance");
    await cacheInUse(a);
    await cacheInUse(b);
    const { user, client, clientRowId, role, tokens } = await signedInWithRole(a);
    // Created first: a catalog change empties every instance's claims cache by itself.
    const other = await createRole(a.ctx, null, { name: "beta-tester" }, ACTOR);
    await a.ctx.db.transaction((tx) => ensureEntitlements(a.ctx, tx, ["cache-gift"]));
    expect((await claimsOf(b, tokens.access_token)).roles).toEqual(["moderator"]);
    expect(claimsCacheHolds(b.ctx.db, user.id, clientRowId)).toBe(true);

    // An assignment and a grant (no catalog change: "cache-gift" exists already) reach B by notifyClaimsChange.
    await assignRole(a.ctx, user.id, { roleId: other.id }, ACTOR);
    await within(1000, async () => (await claimsOf(b as FastifyInstance, tokens.access_token)).roles.length === 2);
    await grantEntitlement(a.ctx, user.id, { name: "cache-gift" }, ACTOR);
    await within(1000, async () =>
      (await claimsOf(b as FastifyInstance, tokens.access_token)).entitlements.includes("cache-gift"),
    );
    await updateRole(a.ctx, client.clientId, role.id, { name: "warden" }, ACTOR);
    await within(1000, async () =>
      (await claimsOf(b as FastifyInstance, tokens.access_token)).roles.includes("warden"),
    );
  });
});

describe.skipIf(!usingPostgres())("access-token owners cache, two instances on one PostgreSQL database", () => {
  it("logout on instance A makes /userinfo on instance B answer 401 within a second", async () => {
    if (!b) throw new Error("no second instance");
    await cacheInUse(a);
    await cacheInUse(b);
    const { session, client, tokens, sid } = await signedIn(a);
    expect((await userinfo(b, tokens.access_token)).statusCode).toBe(200);
    expect(ownersCacheHolds(b.ctx.db, sid, client.clientId).held).toBe(true);
    await a.ctx.db.transaction((tx) => endSessions(a.ctx, tx, { ids: [session.id] }, "logout"));
    await within(1000, async () => (await userinfo(b as FastifyInstance, tokens.access_token)).statusCode === 401);
  });

  it("a profile change on A shows in B's /userinfo within a second; a revoked chain stops B's introspection", async () => {
    if (!b) throw new Error("no second instance");
    await cacheInUse(b);
    const { user, client, tokens, sid } = await signedIn(a);
    expect((await userinfo(b, tokens.access_token)).json().name).toBe("Ada Lovelace");
    expect(ownersCacheHolds(b.ctx.db, sid, client.clientId).held).toBe(true);
    await updateUser(a.ctx.db, user.id, { displayName: "Ada King", updatedAt: clock.now() });
    await within(
      1000,
      async () => (await userinfo(b as FastifyInstance, tokens.access_token)).json().name === "Ada King",
    );

    expect((await introspect(b, client, tokens.access_token)).json().active).toBe(true);
    await a.inject({
      method: "POST",
      url: "/revoke",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ token: tokens.refresh_token }),
    });
    await within(
      1000,
      async () => (await introspect(b as FastifyInstance, client, tokens.access_token)).json().active === false,
    );
  });
});
