import type { Executor } from "@tessera/db";
import { sql } from "drizzle-orm";
import type { CoreContext } from "../../context.ts";
import {
  insertDeliveries,
  insertRoleFanouts,
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

/**
 * A catalog change that changes what holders of roles may do (#16): a role's permissions set, a role deleted (call
 * before the delete: its assignments go with it), a permission deleted or renamed. Every user holding one of the
 * roles gets `roles.changed` on each affected app they used. The change's transaction stays bounded however many
 * holders there are: it records one fan-out row per role scope with the holders' ids (one statement), and the webhook
 * worker queues the deliveries afterwards in batches (libraries/jobs/webhooks.ts expandWebhookFanouts). Nothing when
 * no client subscribes to `roles.changed`. Returns the number of holders recorded.
 */
export async function enqueueRolesChanged(
  deps: CoreContext,
  tx: Executor,
  target: { roleIds: string[] } | { permissionId: string },
): Promise<number> {
  if ((await subscribedEndpoints(tx, "roles.changed")).length === 0) return 0;
  let roles: ReturnType<typeof sql>;
  if ("roleIds" in target) {
    if (target.roleIds.length === 0) return 0;
    roles = sql.join(
      target.roleIds.map((id) => sql`${id}::uuid`),
      sql`, `,
    );
  } else {
    roles = sql`select role_id from role_permissions where permission_id = ${target.permissionId}::uuid`;
  }
  const now = deps.clock.now();
  return insertRoleFanouts(tx, roles, now.toISOString(), now);
}
