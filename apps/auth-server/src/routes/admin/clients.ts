import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import {
  type ClientRow,
  createClient,
  createPublicClient,
  disableClient,
  enableClient,
  getClient,
  listClients,
  rotateClientSecret,
  updateClient,
} from "../../libraries/clients/index.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "./auth.ts";
import { clientView, fromWire, wireBody, withWireNames } from "./client-wire.ts";

const BASE = "/admin/api/v1/clients";
const CLIENT_ID = /^[A-Za-z0-9_-]{1,128}$/;

const emptyBody = z.strictObject({}).optional();

const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).optional(),
  after: z.string().regex(CLIENT_ID, "must be a client_id").optional(),
  include_disabled: z.enum(["true", "false"]).optional(),
});

function clientIdParam(request: FastifyRequest): string {
  const { id } = request.params as { id?: string };
  if (typeof id !== "string" || !CLIENT_ID.test(id)) throw new AppError("CLIENT_NOT_FOUND");
  return id;
}

/**
 * The admin API for client registrations, under /admin/api/v1/clients. Every route is admin-only (see requireAdmin)
 * and every change is audited with the acting admin's id. Secrets appear only in the create and rotate responses.
 */
export async function adminClientRoutes(app: FastifyInstance): Promise<void> {
  // Rate limit (onRequest, per IP) first, then authentication before the body is parsed (preParsing), so floods of
  // bad keys or unauthenticated bodies cost neither a parse nor more than the limit's worth of lookups.
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  // Wrong methods on known paths answer 405 with Allow, not a misleading 404.
  const allowed: Record<string, string[]> = {
    [BASE]: ["GET", "POST"],
    [`${BASE}/:id`]: ["GET", "PATCH"],
    [`${BASE}/:id/rotate-secret`]: ["POST"],
    [`${BASE}/:id/disable`]: ["POST"],
    [`${BASE}/:id/enable`]: ["POST"],
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

  app.post(BASE, routeConfig, async (request, reply) => {
    // The body's shape (an object of known wire fields) is checked here; its values once, by the library.
    const input = fromWire(parse(wireBody, request.body));
    const { client, clientSecret } = await withWireNames(
      (): Promise<{ client: ClientRow; clientSecret: string | undefined }> =>
        input.tokenEndpointAuthMethod === "none"
          ? createPublicClient(app.ctx, input, actorOf(request))
          : createClient(app.ctx, input, actorOf(request)),
    );
    reply.code(201).header("location", `${BASE}/${client.clientId}`);
    return clientView(client, clientSecret);
  });

  app.get(BASE, routeConfig, async (request) => {
    const query = parse(listQuery, request.query);
    const limit = query.limit ?? 100;
    const rows = await listClients(app.ctx.db, {
      limit: limit + 1,
      after: query.after,
      includeDisabled: query.include_disabled !== "false",
    });
    const page = rows.slice(0, limit);
    return {
      clients: page.map((c) => clientView(c)),
      next_after: rows.length > limit ? (page.at(-1)?.clientId ?? null) : null,
    };
  });

  app.get(`${BASE}/:id`, routeConfig, async (request) =>
    clientView(await getClient(app.ctx.db, clientIdParam(request))),
  );

  app.patch(`${BASE}/:id`, routeConfig, async (request) => {
    const id = clientIdParam(request);
    const input = fromWire(parse(wireBody, request.body));
    return clientView(await withWireNames(() => updateClient(app.ctx, id, input, actorOf(request))));
  });

  app.post(`${BASE}/:id/rotate-secret`, routeConfig, async (request) => {
    const id = clientIdParam(request);
    parse(emptyBody, request.body);
    const { client, clientSecret } = await rotateClientSecret(app.ctx, id, actorOf(request));
    return clientView(client, clientSecret);
  });

  app.post(`${BASE}/:id/disable`, routeConfig, async (request) => {
    const id = clientIdParam(request);
    parse(emptyBody, request.body);
    return clientView(await disableClient(app.ctx, id, actorOf(request)));
  });

  app.post(`${BASE}/:id/enable`, routeConfig, async (request) => {
    const id = clientIdParam(request);
    parse(emptyBody, request.body);
    return clientView(await enableClient(app.ctx, id, actorOf(request)));
  });
}
