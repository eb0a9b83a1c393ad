import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import {
  getWebhook,
  listWebhookDeliveries,
  redeliverWebhook,
  removeWebhook,
  rotateSecretBody,
  rotateWebhookSecret,
  setWebhook,
  type WebhookEndpointView,
} from "../../libraries/webhooks/index.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "./auth.ts";

const CLIENTS = "/admin/api/v1/clients";
const DELIVERIES = "/admin/api/v1/webhook-deliveries";
const CLIENT_ID = /^[A-Za-z0-9_-]{1,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const emptyBody = z.strictObject({}).optional();
const listQuery = z.strictObject({
  state: z.enum(["pending", "delivered", "dead"]).optional(),
  client_id: z.string().regex(CLIENT_ID, "must be a client_id").optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

function clientIdParam(request: FastifyRequest): string {
  const { id } = request.params as { id?: string };
  if (typeof id !== "string" || !CLIENT_ID.test(id)) throw new AppError("CLIENT_NOT_FOUND");
  return id;
}

/** The wire form of a client webhook (the admin API's and the CLI's --json); `secret` only when just made. */
export function webhookView(webhook: WebhookEndpointView, secret?: string) {
  return {
    client_id: webhook.clientId,
    url: webhook.url,
    events: webhook.events,
    created_at: webhook.createdAt.toISOString(),
    updated_at: webhook.updatedAt.toISOString(),
    ...(secret ? { secret } : {}),
  };
}

/** The answer to a rotation (API and CLI): the webhook, its new secret, and when the previous one stops signing. */
export function rotatedWebhookView(webhook: WebhookEndpointView, secret: string, previousSecretExpiresAt: Date | null) {
  // null: the previous secret stopped at once (overlap 0).
  return {
    ...webhookView(webhook, secret),
    previous_secret_expires_at: previousSecretExpiresAt?.toISOString() ?? null,
  };
}

/**
 * The admin API for client webhooks (issue #16): `/admin/api/v1/clients/:id/webhook` (GET/PUT/DELETE, and
 * `POST …/rotate-secret`) and the delivery log `/admin/api/v1/webhook-deliveries` (`?state=dead`, and
 * `POST …/:id/redeliver`). The signing secret appears only in the answer that creates or rotates it.
 */
export async function adminWebhookRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  const allowed: Record<string, string[]> = {
    [`${CLIENTS}/:id/webhook`]: ["GET", "PUT", "DELETE"],
    [`${CLIENTS}/:id/webhook/rotate-secret`]: ["POST"],
    [DELIVERIES]: ["GET"],
    [`${DELIVERIES}/:id/redeliver`]: ["POST"],
  };
  for (const [url, methods] of Object.entries(allowed)) {
    app.route({
      method: ["GET", "POST", "PUT", "PATCH", "DELETE"].filter((m) => !methods.includes(m)),
      url,
      ...routeConfig,
      handler: async () => {
        throw new AppError("METHOD_NOT_ALLOWED", undefined, undefined, { allow: methods.join(", ") });
      },
    });
  }

  app.get(`${CLIENTS}/:id/webhook`, routeConfig, async (request) =>
    webhookView(await getWebhook(app.ctx, clientIdParam(request))),
  );

  app.put(`${CLIENTS}/:id/webhook`, routeConfig, async (request) => {
    const id = clientIdParam(request);
    const { webhook, secret } = await setWebhook(app.ctx, id, request.body ?? {}, actorOf(request));
    return webhookView(webhook, secret);
  });

  app.delete(`${CLIENTS}/:id/webhook`, routeConfig, async (request, reply) => {
    await removeWebhook(app.ctx, clientIdParam(request), actorOf(request));
    return reply.code(204).send();
  });

  app.post(`${CLIENTS}/:id/webhook/rotate-secret`, routeConfig, async (request) => {
    const id = clientIdParam(request);
    const body = parse(rotateSecretBody.optional(), request.body);
    const { webhook, secret, previousSecretExpiresAt } = await rotateWebhookSecret(
      app.ctx,
      id,
      actorOf(request),
      body?.overlap_seconds !== undefined ? { overlapSeconds: body.overlap_seconds } : {},
    );
    return rotatedWebhookView(webhook, secret, previousSecretExpiresAt);
  });

  app.get(DELIVERIES, routeConfig, async (request) => {
    const query = parse(listQuery, request.query);
    const rows = await listWebhookDeliveries(app.ctx, {
      limit: query.limit ?? 100,
      ...(query.state ? { state: query.state } : {}),
      ...(query.client_id ? { clientId: query.client_id } : {}),
    });
    return {
      deliveries: rows.map((d) => ({
        id: d.id,
        client_id: d.clientId,
        user_id: d.userId,
        event_type: d.eventType,
        state: d.state,
        attempts: d.attempts,
        last_error: d.lastError,
        created_at: d.createdAt.toISOString(),
        next_attempt_at: d.nextAttemptAt?.toISOString() ?? null,
        delivered_at: d.deliveredAt?.toISOString() ?? null,
        dead_at: d.deadAt?.toISOString() ?? null,
      })),
    };
  });

  app.post(`${DELIVERIES}/:id/redeliver`, routeConfig, async (request, reply) => {
    const { id } = request.params as { id?: string };
    if (typeof id !== "string" || !UUID.test(id)) throw new AppError("WEBHOOK_DELIVERY_NOT_FOUND");
    parse(emptyBody, request.body);
    await redeliverWebhook(app.ctx, id, actorOf(request));
    return reply.code(202).send({ id, state: "pending" });
  });
}
