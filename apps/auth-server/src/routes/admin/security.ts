import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { signingKeyRotateBody, unlockBody } from "../../libraries/admin/schemas.ts";
import { clearAccountLock, listAccountLocks, rotateSigningKeyAsAdmin } from "../../libraries/admin/security.ts";
import { keyPublishWindowSeconds, listSigningKeys } from "../../libraries/keys/index.ts";
import { unlockAccount } from "../../libraries/throttle/operator.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "./auth.ts";

const BASE = "/admin/api/v1";
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
    const body = parse(signingKeyRotateBody, request.body);
    const rotated = await rotateSigningKeyAsAdmin(app.ctx, body?.alg, actorOf(request));
    // How long the retired keys stay in the JWKS (the CLI's remote `keys rotate` prints it).
    return { ...rotated, published_for_seconds: keyPublishWindowSeconds(app.ctx.config) };
  });

  app.get(`${BASE}/account-locks`, routeConfig, async () => ({
    account_locks: (await listAccountLocks(app.ctx)).map((l) => ({
      key: l.key,
      kind: l.kind,
      failures: l.failures,
      locked_until: l.lockedUntil?.toISOString() ?? null,
    })),
  }));

  // By email, as `tessera throttle unlock <email>` does locally (the lock's key is an HMAC the caller cannot compute).
  app.post(`${BASE}/account-locks/unlock`, { config: { rateLimit, adminLevel: "support" } }, async (request) => {
    const { email } = parse(unlockBody, request.body);
    const actor = actorOf(request);
    const cleared = await unlockAccount(app.ctx, actor.meta, { email, actorId: actor.actorId });
    return { email, cleared };
  });

  app.delete(`${BASE}/account-locks/:key`, { config: { rateLimit, adminLevel: "support" } }, async (request, reply) => {
    parse(emptyBody, request.body);
    await clearAccountLock(app.ctx, String((request.params as { key?: string }).key ?? ""), actorOf(request));
    return reply.code(204).send();
  });
}
