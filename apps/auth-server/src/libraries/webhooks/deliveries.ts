import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { findDelivery, listDeliveries, requeueDead, type WebhookDeliveryRow } from "../../queries/webhooks.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";

export interface DeliveryView {
  id: string;
  clientId: string;
  userId: string;
  eventType: string;
  state: "pending" | "delivered" | "dead";
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
  deadAt: Date | null;
}

function stateOf(row: WebhookDeliveryRow): DeliveryView["state"] {
  if (row.deliveredAt) return "delivered";
  if (row.deadAt) return "dead";
  return "pending";
}

function view(row: WebhookDeliveryRow, clientId: string): DeliveryView {
  const state = stateOf(row);
  return {
    id: row.id,
    clientId,
    userId: row.userId,
    eventType: row.eventType,
    state,
    attempts: row.attempts,
    lastError: row.lastError,
    createdAt: row.createdAt,
    nextAttemptAt: state === "pending" ? row.nextAttemptAt : null,
    deliveredAt: row.deliveredAt,
    deadAt: row.deadAt,
  };
}

export async function listWebhookDeliveries(
  deps: CoreContext,
  filter: { state?: DeliveryView["state"]; clientId?: string; limit: number },
): Promise<DeliveryView[]> {
  const rows = await listDeliveries(deps.db, filter);
  return rows.map((r) => view(r, r.publicClientId));
}

/**
 * Puts a dead delivery back in the queue, with the same `webhook-id`: a receiver that did process it (its answer was
 * lost) recognises it and does not act twice. Audited. WEBHOOK_DELIVERY_NOT_FOUND unless the delivery is dead.
 */
export async function redeliverWebhook(deps: CoreContext, id: string, actor: Actor): Promise<void> {
  await deps.db.transaction(async (tx) => {
    const row = await requeueDead(tx, id, deps.clock.now());
    if (!row) {
      const exists = await findDelivery(tx, id);
      throw new AppError(exists ? "WEBHOOK_DELIVERY_NOT_DEAD" : "WEBHOOK_DELIVERY_NOT_FOUND");
    }
    await audit(tx, actor.meta, {
      event: "admin.webhook_redelivered",
      outcome: "success",
      actorId: actor.actorId,
      details: { ...(actor.via ? { via: actor.via } : {}), deliveryId: id, eventType: row.eventType },
    });
  });
}
