import { isIP } from "node:net";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { liftIpSuspension, listIpSuspensions } from "../../libraries/throttle/operator.ts";
import { parse } from "../../validation.ts";
import { requireAdmin } from "./auth.ts";

const BASE = "/admin/api/v1/ip-suspensions";

const listQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).optional() });
const emptyBody = z.strictObject({}).optional();

function ipParam(request: FastifyRequest): string {
  const { ip } = request.params as { ip?: string };
  if (typeof ip !== "string" || ip.length > 64 || !isIP(ip)) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "ip", message: "Expected an IPv4 or IPv6 address." }]);
  }
  return ip;
}

/**
 * Admin view of IP suspensions (failed sign-in throttling): the live ones, and lifting one early. Suspensions also end
 * by themselves. Lifting is audited with the admin as actor.
 */
export async function adminIpSuspensionRoutes(app: FastifyInstance): Promise<void> {
  // As for every admin route: the per-IP rate limit (a route-level onRequest hook) first, then authentication
  // (preParsing, which runs after it), so a flood of guessed keys costs at most the limit's worth of lookups and audit
  // rows. An instance-level onRequest hook would run before the limit.
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  app.get(BASE, routeConfig, async (request) => {
    const query = parse(listQuery, request.query);
    return { ip_suspensions: (await listIpSuspensions(app.ctx, query.limit ?? 100)).map(wire) };
  });

  // Support admins may lift a suspension (#14).
  app.delete(`${BASE}/:ip`, { config: { ...routeConfig.config, adminLevel: "support" } }, async (request) => {
    const ip = ipParam(request);
    parse(emptyBody, request.body);
    const lifted = await liftIpSuspension(app.ctx, request.meta, { ip, actorId: request.admin?.userId });
    return wire(lifted);
  });
}

const wire = (s: { ip: string; suspendedUntil: string | null; suspensions: number }) => ({
  ip: s.ip,
  suspended_until: s.suspendedUntil,
  suspensions: s.suspensions,
});
