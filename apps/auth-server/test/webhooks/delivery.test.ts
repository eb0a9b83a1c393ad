import { auditEvents, webhookDeliveries, webhookEndpoints } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { asc, eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { updateProfile } from "../../src/libraries/accounts/profile.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { sweep } from "../../src/libraries/jobs/sweeper.ts";
import { deliverWebhooks, drainWebhooks, WEBHOOK_DELIVERY } from "../../src/libraries/jobs/webhooks.ts";
import { endSessions } from "../../src/libraries/sessions.ts";
import { build } from "../contract.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, registerClient, sessionCookie, tokensFor } from "../oauth/helpers.ts";
import { type Receiver, seedAdmin, setWebhook, startReceiver } from "./helpers.ts";

const META = { ip: "127.0.0.1", userAgent: "vitest" };

let t: TestApp;
let admin: string;
let receiver: Receiver;

beforeAll(async () => {
  t = await buildOAuthApp();
  admin = (await seedAdmin(t.app)).authorization;
});
afterAll(async () => {
  await t.close();
});
afterEach(async () => {
  await receiver?.close();
});

/** A client with a webhook to a fresh receiver, and a user signed in to it (so the user's events go to it). */
async function setup(events = ["user.updated", "session.ended", "user.deleted"]) {
  receiver = await startReceiver(() => t.clock.now().getTime());
  const client = await registerClient(t.app);
  receiver.setSecret(await setWebhook(t.app, admin, client.clientId, { url: receiver.url, events }));
  const signIn = async () => {
    const user = await createUser(t.app);
    const { session, cookie } = await sessionCookie(t.app, user);
    await tokensFor(t.app, client, cookie);
    return { user, session };
  };
  return { client, signIn };
}

const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id);

describe("delivery", () => {
  it("a receiver that fails twice then succeeds gets each event once, in order per user", async () => {
    const { signIn } = await setup();
    const a = await signIn();
    const b = await signIn();
    await updateProfile(t.app.ctx, { user: a.user, displayName: "A one", meta: META });
    await t.app.ctx.db.transaction((tx) => endSessions(t.app.ctx, tx, { ids: [a.session.id] }, "logout"));
    await updateProfile(t.app.ctx, { user: b.user, displayName: "B one", meta: META });
    const queued = await t.app.ctx.db.select().from(webhookDeliveries).orderBy(asc(webhookDeliveries.seq));
    const [a1, a2, b1] = queued;
    expect(queued.map((q) => q.eventType)).toEqual(["user.updated", "session.ended", "user.updated"]);

    receiver.failures = 2;
    receiver.failOnly = a1?.id;
    // Run 1: A's first event fails (A's second is held back behind it); B's event is not held up by A's trouble.
    expect(await deliverWebhooks(t.app.ctx)).toEqual({ delivered: 1, failed: 1, dead: 0 });
    expect(new Set(receiver.requests.map((r) => r.id))).toEqual(new Set([a1?.id, b1?.id]));
    // Not due yet: the backoff holds.
    expect(await drainWebhooks(t.app.ctx)).toEqual({ delivered: 0, failed: 0, dead: 0 });
    t.clock.advance(3600);
    expect(await drainWebhooks(t.app.ctx)).toEqual({ delivered: 0, failed: 1, dead: 0 });
    t.clock.advance(3600);
    expect(await drainWebhooks(t.app.ctx)).toEqual({ delivered: 2, failed: 0, dead: 0 });

    const forA = receiver.requests.filter((r) => r.id === a1?.id || r.id === a2?.id);
    expect(forA).toEqual([
      { id: a1?.id, status: 503 },
      { id: a1?.id, status: 503 },
      { id: a1?.id, status: 204 },
      { id: a2?.id, status: 204 },
    ]);
    expect(ids(receiver.handled).sort()).toEqual(ids(queued).sort());
    const handledA = receiver.handled.filter((e) => e.data.sub === a.user.id);
    expect(handledA.map((e) => e.type)).toEqual(["user.updated", "session.ended"]);
    expect(handledA[1]?.data).toEqual({ sub: a.user.id, sid: a.session.id, reason: "logout" });
  });

  it("an event is queued in the transaction of the change: a rolled-back change sends nothing", async () => {
    const { signIn } = await setup();
    const a = await signIn();
    await t.app.ctx.db.delete(webhookDeliveries);
    await expect(
      t.app.ctx.db.transaction(async (tx) => {
        await endSessions(t.app.ctx, tx, { ids: [a.session.id] }, "logout");
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    expect(await t.app.ctx.db.select().from(webhookDeliveries)).toEqual([]);
  });

  it("session.ended goes only to the clients that took part in the session", async () => {
    const { signIn } = await setup(["session.ended"]);
    const other = await registerClient(t.app);
    await setWebhook(t.app, admin, other.clientId, { url: receiver.url, events: ["session.ended"] });
    const a = await signIn();
    await t.app.ctx.db.delete(webhookDeliveries);
    await t.app.ctx.db.transaction((tx) => endSessions(t.app.ctx, tx, { ids: [a.session.id] }, "logout"));
    const rows = await t.app.ctx.db.select().from(webhookDeliveries);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.clientId).not.toBe(other.client.id);
  });

  it("gives up after maxAttempts: dead, listed for admins, and redelivered on request", async () => {
    const { signIn } = await setup();
    await t.app.ctx.db.delete(webhookDeliveries);
    const a = await signIn();
    await updateProfile(t.app.ctx, { user: a.user, displayName: "dead letter", meta: META });
    receiver.failures = WEBHOOK_DELIVERY.maxAttempts;
    let dead = 0;
    for (let i = 0; i < WEBHOOK_DELIVERY.maxAttempts; i++) {
      dead += (await drainWebhooks(t.app.ctx)).dead;
      t.clock.advance(WEBHOOK_DELIVERY.maxDelaySeconds * 2);
    }
    expect(dead).toBe(1);
    const listed = await t.app.inject({
      method: "GET",
      url: "/admin/api/v1/webhook-deliveries?state=dead",
      headers: { authorization: admin },
    });
    expect(listed.statusCode).toBe(200);
    const [row] = listed.json().deliveries;
    expect(row).toMatchObject({
      event_type: "user.updated",
      state: "dead",
      attempts: WEBHOOK_DELIVERY.maxAttempts,
      last_error: "HTTP 503",
      user_id: a.user.id,
    });
    const again = await t.app.inject({
      method: "POST",
      url: `/admin/api/v1/webhook-deliveries/${row.id}/redeliver`,
      headers: { authorization: admin },
    });
    expect(again.statusCode).toBe(202);
    expect(await drainWebhooks(t.app.ctx)).toEqual({ delivered: 1, failed: 0, dead: 0 });
    expect(ids(receiver.handled)).toEqual([row.id]);
    const twice = await t.app.inject({
      method: "POST",
      url: `/admin/api/v1/webhook-deliveries/${row.id}/redeliver`,
      headers: { authorization: admin },
    });
    expect(twice.statusCode).toBe(409);
    expect(twice.json().error.code).toBe("WEBHOOK_DELIVERY_NOT_DEAD");
    const [audit] = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.event, "admin.webhook_redelivered"));
    expect(audit?.details).toMatchObject({ deliveryId: row.id });
  });
});

describe("sweeper", () => {
  it("deletes deliveries delivered before the retention cutoff and keeps dead and pending ones", async () => {
    await t.app.ctx.db.delete(webhookDeliveries);
    const { signIn } = await setup();
    const a = await signIn();
    await updateProfile(t.app.ctx, { user: a.user, displayName: "swept", meta: META });
    expect(await drainWebhooks(t.app.ctx)).toEqual({ delivered: 1, failed: 0, dead: 0 });
    await updateProfile(t.app.ctx, { user: a.user, displayName: "pending", meta: META });
    t.clock.advance(t.app.ctx.config.jobs.sweeperRetentionSeconds + 1);
    const report = await sweep(t.app.ctx);
    expect(report.deleted.webhook_deliveries).toBe(1);
    const left = await t.app.ctx.db.select().from(webhookDeliveries);
    expect(left.map((r) => r.deliveredAt)).toEqual([null]);
  });
});

describe("durability", () => {
  it("a restart of Tessera mid-delivery: the next instance delivers the same webhook-id, handled once", async () => {
    const database = await createTestDatabase();
    const clock = new TestClock();
    const local = await startReceiver(() => clock.now().getTime());
    try {
      const first = await build(testConfig(), { database, clock });
      await first.ready();
      const { authorization } = await seedAdmin(first);
      const client = await registerClient(first);
      local.setSecret(
        await setWebhook(first, authorization, client.clientId, { url: local.url, events: ["user.deleted"] }),
      );
      const user = await createUser(first);
      const { cookie } = await sessionCookie(first, user);
      await tokensFor(first, client, cookie);
      await first.ctx.db.transaction(async (tx) => {
        const { enqueueWebhook } = await import("../../src/libraries/webhooks/index.ts");
        await enqueueWebhook(first.ctx, tx, { type: "user.deleted", userId: user.id });
      });
      // The first instance sends the event; the receiver gets it, handles nothing yet and never answers...
      local.hang = true;
      const inFlight = deliverWebhooks(first.ctx, undefined, { timeoutMs: 60_000 });
      await expect.poll(() => local.requests.length).toBe(1);
      // ...and the instance "dies" (stops) before it could record the outcome.
      await first.close();

      const second = await build(testConfig(), { database, clock });
      await second.ready();
      expect(await drainWebhooks(second.ctx)).toEqual({ delivered: 0, failed: 0, dead: 0 }); // leased
      clock.advance(WEBHOOK_DELIVERY.leaseSeconds);
      expect(await drainWebhooks(second.ctx)).toEqual({ delivered: 1, failed: 0, dead: 0 });
      local.release();
      await inFlight; // the dead instance's late failure does not undo the delivery
      const [row] = await second.ctx.db.select().from(webhookDeliveries);
      expect(row?.deliveredAt).not.toBeNull();
      expect(row?.deadAt).toBeNull();
      expect(local.requests.map((r) => r.id)).toEqual([row?.id, row?.id]);
      expect(local.handled.map((e) => [e.id, e.type, e.data.sub])).toEqual([[row?.id, "user.deleted", user.id]]);
      await second.close();
    } finally {
      await local.close();
      await database.close();
    }
  });
});

describe("admin API", () => {
  it("shows the secret once, never in GET or the audit; validates input; 404s", async () => {
    const client = await registerClient(t.app);
    const base = `/admin/api/v1/clients/${client.clientId}/webhook`;
    const put = await t.app.inject({
      method: "PUT",
      url: base,
      headers: { authorization: admin },
      payload: { url: "https://shop.example/hooks", events: ["roles.changed", "user.deleted"] },
    });
    expect(put.statusCode).toBe(200);
    const secret = put.json().secret as string;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(put.json()).toMatchObject({ client_id: client.clientId, events: ["roles.changed", "user.deleted"] });
    const got = await t.app.inject({ method: "GET", url: base, headers: { authorization: admin } });
    expect(got.statusCode).toBe(200);
    expect(got.json().secret).toBeUndefined();
    expect(got.body).not.toContain(secret.slice(6));
    const [stored] = await t.app.ctx.db
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.clientId, client.client.id));
    expect(stored?.secretEncrypted).not.toContain(secret.slice(6, 20));

    // Changing URL/events keeps the secret; rotating gives a new one.
    const change = await t.app.inject({
      method: "PUT",
      url: base,
      headers: { authorization: admin },
      payload: { url: "https://shop.example/hooks2", events: ["user.deleted"] },
    });
    expect(change.json().secret).toBeUndefined();
    const rotated = await t.app.inject({
      method: "POST",
      url: `${base}/rotate-secret`,
      headers: { authorization: admin },
    });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json().secret).toMatch(/^whsec_/);
    expect(rotated.json().secret).not.toBe(secret);

    const audits = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.clientId, client.clientId));
    expect(audits.map((a) => a.event)).toEqual(
      expect.arrayContaining(["admin.client_webhook_set", "admin.client_webhook_secret_rotated"]),
    );
    expect(JSON.stringify(audits)).not.toContain(secret.slice(6));
    expect(JSON.stringify(audits)).not.toContain(rotated.json().secret.slice(6));

    for (const payload of [
      { url: "https://shop.example/h", events: ["user.exploded"] },
      { url: "https://shop.example/h", events: [] },
      { url: "https://shop.example/h", events: ["user.deleted"], extra: 1 },
    ]) {
      const bad = await t.app.inject({ method: "PUT", url: base, headers: { authorization: admin }, payload });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.code).toBe("VALIDATION_FAILED");
    }
    const plain = await t.app.inject({
      method: "PUT",
      url: base,
      headers: { authorization: admin },
      payload: { url: "http://shop.example/h", events: ["user.deleted"] },
    });
    expect(plain.statusCode).toBe(400);
    expect(plain.json().error.code).toBe("INVALID_REDIRECT_URI");

    const removed = await t.app.inject({ method: "DELETE", url: base, headers: { authorization: admin } });
    expect(removed.statusCode).toBe(204);
    const gone = await t.app.inject({ method: "GET", url: base, headers: { authorization: admin } });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe("WEBHOOK_NOT_FOUND");
    const unknown = await t.app.inject({
      method: "GET",
      url: "/admin/api/v1/clients/nope/webhook",
      headers: { authorization: admin },
    });
    expect(unknown.json().error.code).toBe("CLIENT_NOT_FOUND");
    const anonymous = await t.app.inject({ method: "GET", url: base });
    expect(anonymous.statusCode).toBe(401);
  });
});
