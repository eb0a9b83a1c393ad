import { webhookDeliveries } from "@tessera/db";
import { asc } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deleteAccount, updateProfile } from "../../src/libraries/accounts/profile.ts";
import {
  assignRole,
  createRole,
  grantEntitlement,
  revokeEntitlement,
  unassignRole,
} from "../../src/libraries/authorization/index.ts";
import { drainWebhooks } from "../../src/libraries/jobs/webhooks.ts";
import { rememberConsent, revokeConsent } from "../../src/libraries/oauth/consent.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, registerClient, sessionCookie, tokensFor } from "../oauth/helpers.ts";
import { type Receiver, seedAdmin, setWebhook, startReceiver } from "./helpers.ts";

/** Each change emits its event, in its own transaction, to the subscribed clients the user used, and only those. */
const META = { ip: "127.0.0.1", userAgent: "vitest" };
const ACTOR = { actorId: null, meta: META, via: "test" };
const ALL = [
  "user.updated",
  "user.deleted",
  "session.ended",
  "roles.changed",
  "entitlements.changed",
  "consent.revoked",
];

let t: TestApp;
let admin: string;
let receiver: Receiver;
let used: Awaited<ReturnType<typeof registerClient>>;
let unused: Awaited<ReturnType<typeof registerClient>>;

beforeAll(async () => {
  t = await buildOAuthApp();
  admin = (await seedAdmin(t.app)).authorization;
  receiver = await startReceiver(() => t.clock.now().getTime());
  used = await registerClient(t.app);
  unused = await registerClient(t.app);
  receiver.setSecret(await setWebhook(t.app, admin, used.clientId, { url: receiver.url, events: ALL }));
  await setWebhook(t.app, admin, unused.clientId, { url: `${receiver.url}/unused`, events: ALL });
});
afterAll(async () => {
  await receiver.close();
  await t.close();
});
beforeEach(async () => {
  await t.app.ctx.db.delete(webhookDeliveries);
});

async function signedInUser() {
  const user = await createUser(t.app, { password: "correct horse battery staple" });
  const { session, cookie } = await sessionCookie(t.app, user);
  await tokensFor(t.app, used, cookie);
  return { user, session };
}

async function queued() {
  const rows = await t.app.ctx.db.select().from(webhookDeliveries).orderBy(asc(webhookDeliveries.seq));
  // Never to a client the user did not use.
  expect(rows.filter((r) => r.clientId === unused.client.id)).toEqual([]);
  return rows.map((r) => [r.eventType, (r.payload as { data: Record<string, unknown> }).data]);
}

describe("emissions", () => {
  it("consent revoked: consent.revoked to that app only, never to another app the user uses", async () => {
    const { user } = await signedInUser();
    const other = await registerClient(t.app);
    await setWebhook(t.app, admin, other.clientId, { url: `${receiver.url}/other`, events: ALL });
    const { cookie } = await sessionCookie(t.app, user);
    await tokensFor(t.app, other, cookie);
    await rememberConsent(t.app.ctx, user.id, used.client, ["openid"]);
    await revokeConsent(t.app.ctx, { userId: user.id, clientId: used.clientId, meta: META });
    const rows = await t.app.ctx.db.select().from(webhookDeliveries);
    expect(rows.map((r) => [r.clientId, r.eventType, (r.payload as { data: unknown }).data])).toEqual([
      [used.client.id, "consent.revoked", { sub: user.id, client_id: used.clientId }],
    ]);
  });

  it("profile change: user.updated", async () => {
    const { user } = await signedInUser();
    await updateProfile(t.app.ctx, { user, displayName: "New name", meta: META });
    expect(await queued()).toEqual([["user.updated", { sub: user.id }]]);
  });

  it("roles assigned and removed: roles.changed each time", async () => {
    const { user } = await signedInUser();
    const role = await createRole(
      t.app.ctx,
      used.clientId,
      { name: `mod-${user.id.slice(0, 8)}`, permissions: ["chat:mute"] },
      ACTOR,
    );
    await assignRole(t.app.ctx, user.id, { roleId: role.id }, ACTOR);
    await unassignRole(t.app.ctx, user.id, role.id, ACTOR);
    expect(await queued()).toEqual([
      ["roles.changed", { sub: user.id }],
      ["roles.changed", { sub: user.id }],
    ]);
  });

  it("entitlements granted and revoked: entitlements.changed each time", async () => {
    const { user } = await signedInUser();
    await grantEntitlement(t.app.ctx, user.id, { name: "premium" }, ACTOR);
    await revokeEntitlement(t.app.ctx, user.id, "premium", ACTOR);
    expect(await queued()).toEqual([
      ["entitlements.changed", { sub: user.id }],
      ["entitlements.changed", { sub: user.id }],
    ]);
  });

  it("account deletion: session.ended for each session, then user.deleted, delivered once each in that order", async () => {
    const { user, session } = await signedInUser();
    await deleteAccount(t.app.ctx, { user, currentPassword: "correct horse battery staple", meta: META });
    expect(await queued()).toEqual([
      ["session.ended", { sub: user.id, sid: session.id, reason: "account_deleted" }],
      ["user.deleted", { sub: user.id }],
    ]);
    receiver.handled.length = 0;
    expect(await drainWebhooks(t.app.ctx)).toEqual({ delivered: 2, failed: 0, dead: 0 });
    expect(receiver.handled.map((e) => e.type)).toEqual(["session.ended", "user.deleted"]);
  });

  it("a user who never used a client is not announced to it", async () => {
    const user = await createUser(t.app);
    await updateProfile(t.app.ctx, { user, displayName: "Nobody", meta: META });
    expect(await queued()).toEqual([]);
  });
});
