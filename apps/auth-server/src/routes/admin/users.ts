import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { disableUser, enableUser } from "../../libraries/user-status.ts";
import type { UserRow } from "../../queries/user-status.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "./auth.ts";

const BASE = "/admin/api/v1/users";
const emptyBody = z.strictObject({}).optional();

const userIdParam = (request: FastifyRequest) => String((request.params as { id?: string }).id ?? "");

const view = (user: UserRow) => ({
  id: user.id,
  email: user.email,
  disabled_at: user.disabledAt?.toISOString() ?? null,
});

/**
 * Admin API: disable an account (every session ends, every app of them gets a back-channel logout) and enable it
 * again. Admin-only (requireAdmin before the body is parsed), rate-limited like the rest of the admin API, audited.
 */
export async function adminUserRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  for (const action of ["disable", "enable"]) {
    app.route({
      method: ["GET", "PUT", "PATCH", "DELETE"],
      url: `${BASE}/:id/${action}`,
      ...routeConfig,
      handler: async () => {
        throw new AppError("METHOD_NOT_ALLOWED", undefined, undefined, { allow: "POST" });
      },
    });
  }

  app.post(`${BASE}/:id/disable`, routeConfig, async (request) => {
    parse(emptyBody, request.body);
    const { user, sessionsEnded } = await disableUser(app.ctx, userIdParam(request), actorOf(request));
    return { ...view(user), sessions_ended: sessionsEnded };
  });

  app.post(`${BASE}/:id/enable`, routeConfig, async (request) => {
    parse(emptyBody, request.body);
    return view(await enableUser(app.ctx, userIdParam(request), actorOf(request)));
  });
}
