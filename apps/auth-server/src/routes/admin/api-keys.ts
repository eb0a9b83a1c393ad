import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { routeRateLimit } from "../../http/rate-limit.ts";
import {
  type ApiKeyListRow,
  apiKeyInputSchema,
  createApiKeyAs,
  listApiKeys,
  revokeApiKey,
} from "../../libraries/admin/api-keys.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "./auth.ts";

const BASE = "/admin/api/v1/api-keys";
const createBody = apiKeyInputSchema.strict();
const emptyBody = z.strictObject({}).optional();

const idParam = (request: FastifyRequest) => String((request.params as { id?: string }).id ?? "");

export const apiKeyView = (
  k: Pick<ApiKeyListRow, "id" | "name" | "userId" | "createdAt" | "lastUsedAt" | "revokedAt">,
) => ({
  id: k.id,
  name: k.name,
  user_id: k.userId,
  created_at: k.createdAt.toISOString(),
  last_used_at: k.lastUsedAt?.toISOString() ?? null,
  revoked_at: k.revokedAt?.toISOString() ?? null,
});

/**
 * Admin API keys (#14): list (support and admin), create (the key is in the 201 answer only) and revoke (admin).
 * A revoked key is refused on its next request.
 */
export async function adminApiKeyRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  app.get(BASE, routeConfig, async () => ({ api_keys: (await listApiKeys(app.ctx)).map(apiKeyView) }));

  app.post(BASE, routeConfig, async (request, reply) => {
    const body = parse(createBody, request.body);
    const actor = actorOf(request);
    const { apiKey, key } = await createApiKeyAs(app.ctx, { name: body.name, ownerEmail: body.owner_email }, actor);
    reply.code(201).header("cache-control", "no-store");
    return { ...apiKeyView(apiKey), key };
  });

  app.post(`${BASE}/:id/revoke`, routeConfig, async (request) => {
    parse(emptyBody, request.body);
    return apiKeyView(await revokeApiKey(app.ctx, idParam(request), actorOf(request)));
  });
}
