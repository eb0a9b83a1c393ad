import type { FastifyInstance, FastifyReply } from "fastify";
import { jsonSameOriginOnly } from "../../http/csrf.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { requireSession } from "../../http/session.ts";
import { exportOwnData, exportUserAsAdmin } from "../../libraries/privacy/export.ts";
import { reauthBody } from "../../libraries/privacy/reauth.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "../admin/auth.ts";

/** The export as a download: JSON, never cached, named by date. */
export function sendExport(reply: FastifyReply, document: Record<string, unknown>): FastifyReply {
  const day = String(document.generatedAt ?? "").slice(0, 10);
  return reply
    .header("cache-control", "no-store")
    .header("content-disposition", `attachment; filename="tessera-export-${day}.json"`)
    .type("application/json; charset=utf-8")
    .send(JSON.stringify(document, null, 2));
}

/**
 * The data export (#16), `tessera.export/1` (docs/export.md):
 *
 * - GET /api/v1/me/export — for a session that signed in within REAUTH_WINDOW_SECONDS; otherwise 401
 *   STEP_UP_REQUIRED, and the client asks for the password and uses the POST
 * - POST /api/v1/me/export `{ password }` or `{ code }` — the same document after typing the password or a code
 *   (counted and throttled like sign-in guesses); JSON only, same-origin from a browser
 * - GET /admin/api/v1/users/:id/export — an admin's export of a user, audited as `admin.user_exported`
 */
export async function exportApiRoutes(app: FastifyInstance): Promise<void> {
  await app.register(async (own) => {
    own.addHook("preHandler", jsonSameOriginOnly);
    const limited = { config: { errorFormat: "json" as const, rateLimit: routeRateLimit(app.ctx.config, "mfa") } };
    own.get("/api/v1/me/export", limited, async (request, reply) => {
      const current = await requireSession(request);
      return sendExport(reply, await exportOwnData(app.ctx, request.meta, current));
    });
    own.post("/api/v1/me/export", limited, async (request, reply) => {
      const current = await requireSession(request);
      const body = parse(reauthBody, request.body ?? {});
      return sendExport(reply, await exportOwnData(app.ctx, request.meta, { ...current, ...body }));
    });
  });
  await app.register(async (admin) => {
    admin.addHook("preParsing", async (request, reply, payload) => {
      await requireAdmin(request, reply);
      return payload;
    });
    const config = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
    admin.get("/admin/api/v1/users/:id/export", config, async (request, reply) => {
      const id = String((request.params as { id?: string }).id ?? "");
      return sendExport(reply, await exportUserAsAdmin(app.ctx, id, actorOf(request)));
    });
  });
}
