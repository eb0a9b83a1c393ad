import type { Executor } from "@tessera/db";
import type { CoreContext } from "../../context.ts";
import {
  insertDeliveries,
  sessionClientIds,
  sessionOwners,
  subscribedEndpoints,
  userClientIds,
} from "../../queries/webhooks.ts";
import type { WebhookEventType } from "./endpoints.ts";

/**
 * `session.ended` names the sessions that ended: one event per session goes only to the clients that took part in it.
 * Other events name the user (the OIDC `sub`) and go to every subscribed client the user has used (was issued a code
 * or refresh token for). `data` adds fields to the event's `data`: never secrets, kept thin (apps fetch what they need).
 */
export type WebhookEvent =
  | { type: "session.ended"; sessionIds: string[]; reason?: string }
  | {
      type: Exclude<WebhookEventType, "session.ended">;
      userId: string;
      data?: Record<string, unknown>;
      /** Only this client (internal `clients.id`), e.g. the app whose consent was revoked; default: every app the user used. */
      clientId?: string;
    };

/**
 * Queues an event for every subscribed client, in the caller's transaction `tx`: the delivery rows commit (or roll
 * back) with the change they announce, so no event is lost to a crash and none is sent for a change that did not
 * happen. Each row's id is the `webhook-id` the receiver sees on every attempt.
 */
export async function enqueueWebhook(deps: CoreContext, tx: Executor, event: WebhookEvent): Promise<void> {
  // Most changes concern no webhook at all: one indexed-size query, and nothing more, when no client subscribes.
  const subscribers = new Set((await subscribedEndpoints(tx, event.type)).map((e) => e.clientId));
  if (subscribers.size === 0) return;
  const timestamp = deps.clock.now().toISOString();
  if (event.type === "session.ended") {
    const rows = [];
    for (const { sessionId, userId } of await sessionOwners(tx, event.sessionIds)) {
      const targets = await subscribedEndpoints(tx, event.type, await sessionClientIds(tx, [sessionId]));
      for (const { clientId } of targets) {
        const data = { sub: userId, sid: sessionId, ...(event.reason ? { reason: event.reason } : {}) };
        rows.push({ clientId, userId, eventType: event.type, payload: { type: event.type, timestamp, data } });
      }
    }
    await insertDeliveries(tx, rows);
    return;
  }
  const audience = event.clientId ? [event.clientId] : await userClientIds(tx, event.userId);
  const targets = await subscribedEndpoints(tx, event.type, audience);
  await insertDeliveries(
    tx,
    targets.map(({ clientId }) => ({
      clientId,
      userId: event.userId,
      eventType: event.type,
      payload: { type: event.type, timestamp, data: { sub: event.userId, ...event.data } },
    })),
  );
}
