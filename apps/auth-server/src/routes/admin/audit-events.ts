import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { releaseDeadline } from "../../http/deadline.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import {
  type AuditQuery,
  auditEventView,
  auditQuerySchema,
  CSV_COLUMNS,
  csvLine,
  exportAuditEvents,
  listAuditEvents,
} from "../../libraries/admin/audit-log.ts";
import { parse } from "../../validation.ts";
import { requireAdmin } from "./auth.ts";

const BASE = "/admin/api/v1/audit-events";

const listQuery = auditQuerySchema.strict();
const exportQuery = auditQuerySchema
  .omit({ cursor: true, limit: true })
  .extend({
    format: z.enum(["ndjson", "csv"]).optional(),
  })
  .strict();

/**
 * The audit log in the admin API (#14): `GET /admin/api/v1/audit-events` (filters, cursor paging, newest first) and
 * `GET /admin/api/v1/audit-events/export?format=ndjson|csv` (every matching event, streamed in batches).
 * Both are reads: support admins may use them.
 */
export async function adminAuditRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  app.get(BASE, routeConfig, async (request) => {
    const page = await listAuditEvents(app.ctx, parse(listQuery, request.query));
    return { audit_events: page.events.map(auditEventView), next_cursor: page.nextCursor };
  });

  app.get(`${BASE}/export`, routeConfig, async (request, reply) => {
    const { format = "ndjson", ...query } = parse(exportQuery, request.query);
    return sendAuditExport(request, reply, query, format);
  });
}

/**
 * Streams the filtered audit log as NDJSON or CSV (API and console). Rows come from the database a batch at a time
 * (each batch with a fresh request deadline) and go out through a stream with backpressure, so memory stays bounded.
 */
export function sendAuditExport(
  request: FastifyRequest,
  reply: FastifyReply,
  query: AuditQuery,
  format: "ndjson" | "csv",
): FastifyReply {
  const app = request.server;
  const rows = exportAuditEvents(app.ctx, query, { runBatch: releaseDeadline(app, request) });
  async function* lines() {
    if (format === "csv") yield `${CSV_COLUMNS.join(",")}\r\n`;
    for await (const row of rows) yield format === "csv" ? csvLine(row) : `${JSON.stringify(auditEventView(row))}\n`;
  }
  const stamp = app.ctx.clock.now().toISOString().replace(/[:.]/g, "-");
  reply
    .header("cache-control", "no-store")
    .header("content-disposition", `attachment; filename="audit-${stamp}.${format}"`)
    .type(format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson");
  return reply.send(Readable.from(lines()));
}
