import { webhookDeliveries } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { asc } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { deliverWebhooks, drainWebhooks, WEBHOOK_DELIVERY } from "../../src/libraries/jobs/webhooks.ts";
import { build } from "../contract.ts";
import { createUser, registerClient, sessionCookie, tokensFor } from "../oauth/helpers.ts";
import { type Receiver, seedAdmin, setWebhook, startReceiver } from "./helpers.ts";

/**
 * Issue #16, end to end: "Delete a user: every app receives user.deleted exactly once even across a restart of
 * Tessera mid-delivery." Three apps the user signed in to, each with its own webhook endpoint verifying with the SDK:
 *
 * - `handledLate`: the first instance's request reaches it, but Tessera "dies" before the app reads it;
 * - `answerLost`: the app handles the event, but its 2xx never reaches Tessera before Tessera "dies";
 * - `beforeCrash`: delivered and recorded by the first instance before it dies.
 *
 * "Exactly once" is the README's promise (Webhooks to apps, Signature): delivery is at least once, every attempt carries
 * the same `webhook-id` (the row id), even after a restart, and a receiver that remembers ids (the SDK does) acts once.
 * So per app: one event id, handled once by the SDK, at least one request, exactly one 2xx answered for a handling
 * (a replay is answered 200 and not handled again), and one delivered row in webhook_deliveries.
 */
const PASSWORD = "correct horse battery staple";

describe("user.deleted across a restart of Tessera mid-delivery", () => {
  it("each app the user used receives user.deleted exactly once (one webhook-id, handled once, one delivered row)", async () => {
    const database = await createTestDatabase();
    const clock = new TestClock();
    const now = () => clock.now().getTime();
    const receivers: Receiver[] = [];
    const receiver = async () => {
      const r = await startReceiver(now);
      receivers.push(r);
      return r;
    };
    try {
      const first = await build(testConfig(), { database, clock });
      await first.ready();
      const { authorization } = await seedAdmin(first);
      const apps = {
        handledLate: { client: await registerClient(first, { name: "Game" }), receiver: await receiver() },
        answerLost: { client: await registerClient(first, { name: "Shop" }), receiver: await receiver() },
        beforeCrash: { client: await registerClient(first, { name: "Forum" }), receiver: await receiver() },
        // Subscribed, but the user never signed in to it: it hears nothing of the user.
        unused: { client: await registerClient(first, { name: "Wiki" }), receiver: await receiver() },
      };
      for (const { client, receiver: r } of Object.values(apps)) {
        r.setSecret(await setWebhook(first, authorization, client.clientId, { url: r.url, events: ["user.deleted"] }));
      }

      // The user signs in to the three apps (a code and tokens issued to each: the apps the user "used").
      const user = await createUser(first, { password: PASSWORD });
      const { cookie } = await sessionCookie(first, user);
      for (const { client } of [apps.handledLate, apps.answerLost, apps.beforeCrash]) {
        await tokensFor(first, client, cookie);
      }

      // Deleted through the real path: the account API (-> libraries/privacy/erasure.ts eraseAccount).
      const deleted = await first.inject({
        method: "POST",
        url: "/api/v1/me/delete",
        headers: { "content-type": "application/json", cookie },
        payload: { currentPassword: PASSWORD },
      });
      expect(deleted.statusCode).toBe(204);
      const queued = await database.db.select().from(webhookDeliveries).orderBy(asc(webhookDeliveries.seq));
      expect(queued.map((q) => [q.clientId, q.eventType, q.userId])).toEqual(
        expect.arrayContaining([
          [apps.handledLate.client.client.id, "user.deleted", user.id],
          [apps.answerLost.client.client.id, "user.deleted", user.id],
          [apps.beforeCrash.client.client.id, "user.deleted", user.id],
        ]),
      );
      expect(queued).toHaveLength(3);

      // Delivery starts on the first instance: one app will not have read the request when Tessera dies, one handles
      // it but its answer is lost, one answers in time.
      apps.handledLate.receiver.hang = true;
      apps.answerLost.receiver.hangAfterHandling = true;
      const inFlight = deliverWebhooks(first.ctx, undefined, { timeoutMs: 60_000 });
      await expect.poll(() => apps.handledLate.receiver.requests.length).toBe(1);
      await expect.poll(() => apps.answerLost.receiver.requests.length).toBe(1);
      await expect.poll(() => apps.beforeCrash.receiver.requests.length).toBe(1);
      expect(apps.answerLost.receiver.handled).toHaveLength(1);
      expect(apps.handledLate.receiver.handled).toHaveLength(0);
      await expect
        .poll(async () => (await database.db.select().from(webhookDeliveries)).filter((r) => r.deliveredAt).length)
        .toBe(1);
      // ...and the instance "dies" with two deliveries in flight, their outcome unrecorded.
      await first.close();

      // A new instance on the same database.
      const second = await build(testConfig(), { database, clock });
      await second.ready();
      try {
        // The claims of the dead instance still hold (its lease), so nothing is sent twice at once...
        expect(await drainWebhooks(second.ctx)).toEqual({ delivered: 0, failed: 0, dead: 0 });
        // ...until the lease runs out: then the two unrecorded deliveries go again, with the same webhook-id.
        clock.advance(WEBHOOK_DELIVERY.leaseSeconds);
        expect(await drainWebhooks(second.ctx)).toEqual({ delivered: 2, failed: 0, dead: 0 });
        // The dead instance's requests now drop; their late failure undoes nothing and sends nothing again.
        for (const r of receivers) r.release();
        await inFlight;
        clock.advance(WEBHOOK_DELIVERY.maxDelaySeconds * 2);
        expect(await drainWebhooks(second.ctx)).toEqual({ delivered: 0, failed: 0, dead: 0 });

        const rows = await second.ctx.db.select().from(webhookDeliveries).orderBy(asc(webhookDeliveries.seq));
        expect(rows).toHaveLength(3);
        const rowOf = (clientId: string) => {
          const forClient = rows.filter((r) => r.clientId === clientId);
          expect(forClient).toHaveLength(1);
          const [row] = forClient;
          if (!row) throw new Error("no row");
          return row;
        };
        const expected = {
          // request 1 unanswered (Tessera died), request 2 handled and answered 204
          handledLate: { statuses: [0, 204], attempts: 2 },
          // request 1 handled but the answer lost, request 2 refused by the SDK as a replay (answered 200)
          answerLost: { statuses: [0, 200], attempts: 2 },
          // one request, handled and answered 204 before the crash
          beforeCrash: { statuses: [204], attempts: 1 },
        };
        for (const [name, want] of Object.entries(expected)) {
          const { client, receiver: r } = apps[name as keyof typeof expected];
          const row = rowOf(client.client.id);
          expect(row, name).toMatchObject({ eventType: "user.deleted", userId: user.id, attempts: want.attempts });
          expect(row.deliveredAt, name).not.toBeNull();
          expect(row.deadAt, name).toBeNull();
          expect((row.payload as { data: unknown }).data, name).toEqual({ sub: user.id });
          // Every request carried the row's id: one event id per app, whatever the number of attempts.
          expect(r.requests, name).toEqual(want.statuses.map((status) => ({ id: row.id, status })));
          // The SDK accepted it exactly once.
          expect(
            r.handled.map((e) => [e.id, e.type, e.data.sub]),
            name,
          ).toEqual([[row.id, "user.deleted", user.id]]);
        }
        // Three apps, three distinct event ids.
        expect(new Set(rows.map((r) => r.id)).size).toBe(3);
        expect(apps.unused.receiver.requests).toEqual([]);
      } finally {
        await second.close();
      }
    } finally {
      for (const r of receivers) {
        r.release();
        await r.close();
      }
      await database.close();
    }
  });
});
