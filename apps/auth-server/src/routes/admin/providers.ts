import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { PROVIDER_WIRE_NAMES } from "../../libraries/admin/wire-names.ts";
import {
  createProvider,
  getProvider,
  listProviders,
  providerView,
  setProviderEnabled,
} from "../../libraries/federation/providers.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "./auth.ts";

const BASE = "/admin/api/v1/providers";
const SLUG = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** Wire (snake_case) names of the library's fields, for input and for field errors. */
const WIRE: Record<string, string> = PROVIDER_WIRE_NAMES;
const FROM_WIRE = Object.fromEntries(Object.entries(WIRE).map(([k, v]) => [v, k]));

const wireBody = z.record(z.string(), z.unknown());
const emptyBody = z.strictObject({}).optional();
const listQuery = z.strictObject({ include_disabled: z.enum(["true", "false"]).optional() });

function slugParam(request: FastifyRequest): string {
  const { slug } = request.params as { slug?: string };
  if (typeof slug !== "string" || !SLUG.test(slug)) throw new AppError("PROVIDER_NOT_FOUND");
  return slug;
}

/**
 * The admin API for upstream sign-in providers, under /admin/api/v1/providers: create (the client secret is sealed
 * with the master key and never answered back; `client_secret_set` says whether one is stored), list, show, disable,
 * enable. Admin-only, audited with the acting admin (before and after, never the secret).
 */
export async function adminProviderRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  app.post(BASE, routeConfig, async (request, reply) => {
    const body = parse(wireBody, request.body);
    const input = Object.fromEntries(
      Object.entries(body).map(([k, v]) => [FROM_WIRE[k] ?? (WIRE[k] ? `_${k}` : k), v]),
    );
    try {
      const created = await createProvider(app.ctx, input, actorOf(request));
      reply.code(201).header("location", `${BASE}/${created.slug}`);
      return providerView(created);
    } catch (error) {
      if (error instanceof AppError && error.fields) {
        const fields = error.fields.map((f) => {
          const [head, ...rest] = f.field.split(".");
          return { ...f, field: [WIRE[head ?? ""] ?? head, ...rest].join(".") };
        });
        throw new AppError(error.code, error.message, fields);
      }
      throw error;
    }
  });

  app.get(BASE, routeConfig, async (request) => {
    const query = parse(listQuery, request.query);
    const rows = await listProviders(app.ctx, { enabledOnly: query.include_disabled === "false" });
    return { providers: rows.map(providerView) };
  });

  app.get(`${BASE}/:slug`, routeConfig, async (request) =>
    providerView(await getProvider(app.ctx, slugParam(request))),
  );

  for (const action of ["disable", "enable"] as const) {
    app.post(`${BASE}/:slug/${action}`, routeConfig, async (request) => {
      const slug = slugParam(request);
      parse(emptyBody, request.body);
      return providerView(await setProviderEnabled(app.ctx, slug, action === "enable", actorOf(request)));
    });
  }
}
