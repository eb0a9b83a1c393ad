import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { billingEnabled } from "../../libraries/billing/index.ts";
import { archivePlanByName, createPlan, getPlan, plansList, planView } from "../../libraries/billing/plans.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "../admin/auth.ts";

const BASE = "/admin/api/v1/plans";
const emptyBody = z.strictObject({}).optional();
const listQuery = z.strictObject({ include_archived: z.enum(["true", "false"]).optional() });

const nameParam = (request: FastifyRequest) => String((request.params as { name?: string }).name ?? "");

/**
 * The admin API for plans: list, create, show, archive (`/admin/api/v1/plans[/:name[/archive]]`). Admin-only,
 * rate-limited like the rest of the admin API, every change audited. Plans are addressed by their unique name.
 */
export async function adminPlanRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    if (!billingEnabled(app.ctx.config)) throw new AppError("BILLING_DISABLED");
    return payload;
  });

  const allowed: Record<string, string[]> = {
    [BASE]: ["GET", "POST"],
    [`${BASE}/:name`]: ["GET"],
    [`${BASE}/:name/archive`]: ["POST"],
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

  app.get(BASE, routeConfig, async (request) => {
    const query = parse(listQuery, request.query);
    const rows = await plansList(app.ctx, query.include_archived === "true");
    return { data: await Promise.all(rows.map((p) => planView(app.ctx, p))) };
  });

  app.post(BASE, routeConfig, async (request, reply) => {
    const plan = await createPlan(app.ctx, request.body, actorOf(request));
    return reply.code(201).send(await planView(app.ctx, plan));
  });

  app.get(`${BASE}/:name`, routeConfig, async (request) =>
    planView(app.ctx, await getPlan(app.ctx, nameParam(request))),
  );

  app.post(`${BASE}/:name/archive`, routeConfig, async (request) => {
    parse(emptyBody, request.body);
    return planView(app.ctx, await archivePlanByName(app.ctx, nameParam(request), actorOf(request)));
  });
}
