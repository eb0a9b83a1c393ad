import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { clearAccountLock, listAccountLocks, rotateSigningKeyAsAdmin } from "../../libraries/admin/security.ts";
import { listSigningKeys } from "../../libraries/keys/index.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "./auth.ts";

const BASE = "/admin/api/v1";
const rotateBody = z.strictObject({ alg: z.enum(["RS256", "ES256", "EdDSA"]).optional() }).optional();
const emptyBody = z.strictObject({}).optional();

/**
 * Security in the admin API (#14): signing keys (list; rotate: admin only) and account locks (list; clear: support
 * may). IP suspensions are in ip-suspensions.ts, API keys in api-keys.ts.
 */
export async function adminSecurityRoutes(app: FastifyInstance): Promise<void> {
  const rateLimit = routeRateLimit(app.ctx.config, "admin");
  const routeConfig = { config: { rateLimit } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  app.get(`${BASE}/signing-keys`, routeConfig, async () => ({
    signing_keys: (await listSigningKeys(app.ctx)).map(({ row, status }) => ({
      kid: row.kid,
      alg: row.alg,
      status,
      created_at: row.createdAt.toISOString(),
      retired_at: row.retiredAt?.toISOString() ?? null,
    })),
  }));

  app.post(`${BASE}/signing-keys/rotate`, routeConfig, async (request) => {
    const body = parse(rotateBody, request.body);
    return rotateSigningKeyAsAdmin(app.ctx, body?.alg, actorOf(request));
  });

  app.get(`${BASE}/account-locks`, routeConfig, async () => ({
    account_locks: (await listAccountLocks(app.ctx)).map((l) => ({
      key: l.key,
      kind: l.kind,
      failures: l.failures,
      locked_until: l.lockedUntil?.toISOString() ?? null,
    })),
  }));

  app.delete(`${BASE}/account-locks/:key`, { config: { rateLimit, adminLevel: "support" } }, async (request, reply) => {
    parse(emptyBody, request.body);
    await clearAccountLock(app.ctx, String((request.params as { key?: string }).key ?? ""), actorOf(request));
    return reply.code(204).send();
  });
}
