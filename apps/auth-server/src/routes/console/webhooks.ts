import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { confirmStepUp } from "../../libraries/admin/step-up.ts";
import { getClient, listClients } from "../../libraries/clients/index.ts";
import {
  getWebhook,
  listWebhookDeliveries,
  redeliverWebhook,
  removeWebhook,
  rotateWebhookSecret,
  setWebhook,
  WEBHOOK_EVENT_TYPES,
  type WebhookEndpointView,
} from "../../libraries/webhooks/index.ts";
import { seeOther } from "../pages/render.ts";
import { type ConsoleAdmin, consoleAccess } from "./guard.ts";
import {
  actionErrorOf,
  field,
  formConfig,
  formErrorOf,
  multiField,
  noticeFrom,
  pageConfig,
  renderConsole,
  renderWithError,
  type ShownError,
} from "./render.ts";

const CLIENT_ID = /^[A-Za-z0-9_-]{1,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STATES = ["pending", "delivered", "dead"] as const;
type State = (typeof STATES)[number];

const idOf = (request: FastifyRequest) => String((request.params as { id?: string }).id ?? "");
const pageOf = (clientId: string) => `/admin/clients/${encodeURIComponent(clientId)}/webhook`;

async function webhookOrNull(app: FastifyInstance, clientId: string): Promise<WebhookEndpointView | null> {
  try {
    return await getWebhook(app.ctx, clientId);
  } catch (error) {
    if (error instanceof AppError && error.code === "WEBHOOK_NOT_FOUND") return null;
    throw error;
  }
}

/**
 * Webhooks in the console (#16, #14): per client the URL and event types, the signing secret (shown once, when made or
 * rotated with a fresh code or password), removal, and the client's deliveries; at /admin/webhooks every client's
 * deliveries by state (the dead-letter list) with "deliver again". Reads: support may; changes: admin.
 */
export async function webhookPages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);
  const form = formConfig(app);

  async function showClient(
    request: FastifyRequest,
    reply: FastifyReply,
    admin: ConsoleAdmin,
    clientId: string,
    extra: Record<string, unknown> = {},
    shown?: ShownError,
  ) {
    const client = await getClient(app.ctx.db, clientId);
    const webhook = await webhookOrNull(app, client.clientId);
    const data = {
      title: `Webhook of ${client.name}`,
      active: "/admin/webhooks",
      notice: noticeFrom(request),
      client,
      webhook,
      eventTypes: WEBHOOK_EVENT_TYPES,
      values: { url: webhook?.url ?? "", events: webhook?.events ?? [] },
      deliveries: await listWebhookDeliveries(app.ctx, { clientId: client.clientId, limit: 50 }),
      rotateErrors: {},
      ...extra,
    };
    return shown
      ? renderWithError(request, reply, admin, "webhook", data, shown)
      : renderConsole(request, reply, admin, "webhook", data);
  }

  app.get("/admin/webhooks", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const raw = (request.query as Record<string, unknown>).state;
    const state = STATES.includes(raw as State) ? (raw as State) : "dead";
    return renderConsole(request, reply, admin, "webhooks", {
      title: "Webhooks",
      active: "/admin/webhooks",
      notice: noticeFrom(request),
      state,
      states: STATES,
      deliveries: await listWebhookDeliveries(app.ctx, { state, limit: 100 }),
      clients: await listClients(app.ctx.db, { limit: 500, includeDisabled: true }),
    });
  });

  app.get("/admin/clients/:id/webhook", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    return showClient(request, reply, admin, idOf(request));
  });

  app.post("/admin/clients/:id/webhook", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const clientId = idOf(request);
    const input = { url: field(request.body, "url", 2000)?.trim() ?? "", events: multiField(request.body, "events") };
    try {
      const { webhook, secret } = await setWebhook(app.ctx, clientId, input, admin.actor);
      if (!secret) return seeOther(reply, `${pageOf(webhook.clientId)}?notice=webhook_saved`);
      const client = await getClient(app.ctx.db, webhook.clientId);
      return renderConsole(request, reply, admin, "webhook-secret", {
        title: "Webhook signing secret",
        active: "/admin/webhooks",
        client,
        secret,
      });
    } catch (error) {
      const shown = actionErrorOf(error);
      if (!shown || (error as AppError).code === "CLIENT_NOT_FOUND") throw error;
      return showClient(request, reply, admin, clientId, { values: input }, shown);
    }
  });

  app.post("/admin/clients/:id/webhook/rotate-secret", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const client = await getClient(app.ctx.db, idOf(request));
    try {
      await confirmStepUp(app.ctx, request.meta, {
        user: admin.current.user,
        code: field(request.body, "confirm_code", 32)?.trim(),
        password: field(request.body, "confirm_password", 1024),
      });
      const { secret } = await rotateWebhookSecret(app.ctx, client.clientId, admin.actor);
      return renderConsole(request, reply, admin, "webhook-secret", {
        title: "New webhook signing secret",
        active: "/admin/webhooks",
        client,
        secret,
      });
    } catch (error) {
      const shown = formErrorOf(error);
      if (!shown) throw error;
      return showClient(
        request,
        reply,
        admin,
        client.clientId,
        { rotateErrors: shown.errors },
        { ...shown, errors: {} },
      );
    }
  });

  app.post("/admin/clients/:id/webhook/delete", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const client = await getClient(app.ctx.db, idOf(request));
    try {
      await removeWebhook(app.ctx, client.clientId, admin.actor);
    } catch (error) {
      const shown = actionErrorOf(error);
      if (!shown) throw error;
      return showClient(request, reply, admin, client.clientId, {}, shown);
    }
    return seeOther(reply, `${pageOf(client.clientId)}?notice=webhook_removed`);
  });

  app.post("/admin/webhooks/deliveries/:id/redeliver", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const id = idOf(request);
    if (!UUID.test(id)) throw new AppError("WEBHOOK_DELIVERY_NOT_FOUND");
    await redeliverWebhook(app.ctx, id, admin.actor);
    const from = field(request.body, "client_id", 128);
    const back = from && CLIENT_ID.test(from) ? pageOf(from) : "/admin/webhooks";
    return seeOther(reply, `${back}?notice=webhook_redelivered`);
  });
}
