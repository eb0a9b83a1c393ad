import { webhookDeliveries } from "@tessera/db";
import { asc } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  assignRole,
  createPermission,
  createRole,
  deletePermission,
  deleteRole,
  updateRole,
} from "../../src/libraries/authorization/index.ts";
import { drainWebhooks, expandWebhookFanouts } from "../../src/libraries/jobs/webhooks.ts";
import type { UserRow } from "../../src/libraries/sessions.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, registerClient, sessionCookie, tokensFor } from "../oauth/helpers.ts";
import { type Receiver, seedAdmin, setWebhook, startReceiver } from "./helpers.ts";

/**
 * Catalog-wide role changes (#16): a role's permissions changed, a role deleted, a permission deleted or renamed emit
 * `roles.changed` for every holder of the role, on each affected app the holder used, one row per (app, user), queued
 * by the worker's fan-out expansion after the change (role-fanout.test.ts: bounded and exactly once at scale).
 */
const META = { ip: "127.0.0.1", userAgent: "vitest" };
const ACTOR = { actorId: null, meta: META, via: "test" };

let t: TestApp;
let admin: string;
let receiver: Receiver;
let game: Awaited<ReturnType<typeof registerClient>>;
let shop: Awaited<ReturnType<typeof registerClient>>;

beforeAll(async () => {
  t = await buildOAuthApp();
  admin = (await seedAdmin(t.app)).authorization;
  receiver = await startReceiver(() => t.clock.now().getTime());
  game = await registerClient(t.app);
  shop = await registerClient(t.app);
  receiver.setSecret(await setWebhook(t.app, admin, game.clientId, { url: receiver.url, events: ["roles.changed"] }));
  await setWebhook(t.app, admin, shop.clientId, { url: `${receiver.url}/shop`, events: ["roles.changed"] });
});
afterAll(async () => {
  await receiver.close();
  await t.close();
});
beforeEach(async () => {
  await clear();
});

/** Forgets every event so far (fan-outs expanded first, so none is queued later). */
async function clear() {
  await expandWebhookFanouts(t.app.ctx);
  await t.app.ctx.db.delete(webhookDeliveries);
}

/** A user who signed in to the given apps. */
async function userOf(...apps: Array<typeof game>): Promise<UserRow> {
  const user = await createUser(t.app);
  const { cookie } = await sessionCookie(t.app, user);
  for (const app of apps) await tokensFor(t.app, app, cookie);
  return user;
}

/** The deliveries queued, once the worker has expanded the change's fan-out. */
async function queued() {
  await expandWebhookFanouts(t.app.ctx);
  const rows = await t.app.ctx.db.select().from(webhookDeliveries).orderBy(asc(webhookDeliveries.seq));
  return rows
    .map((r) => [
      r.clientId === game.client.id ? "game" : "shop",
      r.eventType,
      (r.payload as { data: { sub: string } }).data.sub,
    ])
    .sort((a, b) => `${a[0]}${a[2]}`.localeCompare(`${b[0]}${b[2]}`));
}
const expected = (app: string, users: UserRow[]) =>
  users.map((u) => [app, "roles.changed", u.id]).sort((a, b) => `${a[0]}${a[2]}`.localeCompare(`${b[0]}${b[2]}`));

describe("catalog-wide role changes", () => {
  it("an app role's permissions set, a permission renamed or deleted, the role deleted: every holder who used the app", async () => {
    const role = await createRole(t.app.ctx, game.clientId, { name: "moderator", permissions: ["chat:mute"] }, ACTOR);
    const holders = [await userOf(game), await userOf(game, shop), await userOf(game)];
    const neverUsedGame = await userOf(shop);
    const notHolder = await userOf(game);
    for (const user of [...holders, neverUsedGame]) await assignRole(t.app.ctx, user.id, { roleId: role.id }, ACTOR);
    await clear();
    void notHolder;

    // Description only: what holders may do is unchanged, nothing is sent.
    await updateRole(t.app.ctx, game.clientId, role.id, { description: "Keeps chat civil" }, ACTOR);
    expect(await queued()).toEqual([]);
    // The same permissions again: nothing.
    await updateRole(t.app.ctx, game.clientId, role.id, { permissions: ["chat:mute"] }, ACTOR);
    expect(await queued()).toEqual([]);

    await updateRole(t.app.ctx, game.clientId, role.id, { permissions: ["chat:mute", "chat:kick"] }, ACTOR);
    // The worker's run expands the fan-out, then delivers: signed, each once.
    receiver.handled.length = 0;
    expect(await drainWebhooks(t.app.ctx)).toEqual({ delivered: 3, failed: 0, dead: 0 });
    expect(receiver.handled.map((e) => e.data.sub).sort()).toEqual(holders.map((u) => u.id).sort());
    expect(await queued()).toEqual(expected("game", holders));

    await clear();
    const ban = await createPermission(t.app.ctx, game.clientId, { name: "chat:ban" }, ACTOR);
    expect(await queued()).toEqual([]); // in no role yet
    await updateRole(t.app.ctx, game.clientId, role.id, { permissions: ["chat:mute", "chat:kick", "chat:ban"] }, ACTOR);
    await clear();
    await deletePermission(t.app.ctx, game.clientId, ban.id, ACTOR);
    expect(await queued()).toEqual(expected("game", holders));

    await clear();
    await deleteRole(t.app.ctx, game.clientId, role.id, ACTOR);
    expect(await queued()).toEqual(expected("game", holders));
  });

  it("a global role reaches every subscribed app each holder used", async () => {
    const role = await createRole(t.app.ctx, null, { name: `staff-${Date.now()}` }, ACTOR);
    const both = await userOf(game, shop);
    const gameOnly = await userOf(game);
    for (const user of [both, gameOnly]) await assignRole(t.app.ctx, user.id, { roleId: role.id }, ACTOR);
    await clear();
    await deleteRole(t.app.ctx, null, role.id, ACTOR);
    expect(await queued()).toEqual(
      [...expected("game", [both, gameOnly]), ...expected("shop", [both])].sort((a, b) =>
        `${a[0]}${a[2]}`.localeCompare(`${b[0]}${b[2]}`),
      ),
    );
  });
});
