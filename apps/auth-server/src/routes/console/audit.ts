import type { FastifyInstance } from "fastify";
import { AppError } from "../../errors/index.ts";
import { auditEventView, auditQuerySchema, listAuditEvents } from "../../libraries/admin/audit-log.ts";
import { fieldErrors } from "../../validation.ts";
import { sendAuditExport } from "../admin/audit-events.ts";
import { consoleAccess } from "./guard.ts";
import { pageConfig, renderConsole } from "./render.ts";

const FILTERS = ["user", "client", "event", "ip", "from", "to"] as const;

/** Only the filter fields of a query, as strings (for the form's values and the export and next-page links). */
function filterValues(query: unknown): Record<string, string> {
  const record = (query ?? {}) as Record<string, unknown>;
  const values: Record<string, string> = {};
  for (const name of FILTERS) {
    const value = record[name];
    if (typeof value === "string" && value.length <= 200) values[name] = value;
  }
  return values;
}

/**
 * The audit log in the console (#14): the API's filters as a GET form, cursor paging, and the export links (the same
 * streamed NDJSON/CSV as the API). Reads: support may.
 */
export async function auditPages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);

  app.get("/admin/audit", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const values = filterValues(request.query);
    const cursor = (request.query as Record<string, unknown>).cursor;
    const parsed = auditQuerySchema.safeParse({ ...values, cursor, limit: "50" });
    const data = { title: "Audit log", active: "/admin/audit", values };
    if (!parsed.success) {
      const errors = Object.fromEntries(fieldErrors(parsed.error).map((f) => [f.field, f.message]));
      return renderConsole(
        request,
        reply,
        admin,
        "audit",
        { ...data, errors, events: [], next: null, exports: null },
        400,
      );
    }
    const { events, nextCursor } = await listAuditEvents(app.ctx, parsed.data);
    const filters = new URLSearchParams(values);
    return renderConsole(request, reply, admin, "audit", {
      ...data,
      events: events.map(auditEventView),
      next: nextCursor ? `/admin/audit?${new URLSearchParams({ ...values, cursor: nextCursor })}` : null,
      exports: {
        ndjson: `/admin/audit/export?${new URLSearchParams({ ...values, format: "ndjson" })}`,
        csv: `/admin/audit/export?${new URLSearchParams({ ...values, format: "csv" })}`,
      },
      filtered: filters.size > 0,
    });
  });

  app.get("/admin/audit/export", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const format = (request.query as Record<string, unknown>).format === "csv" ? "csv" : "ndjson";
    const parsed = auditQuerySchema.safeParse(filterValues(request.query));
    if (!parsed.success) throw new AppError("VALIDATION_FAILED", undefined, fieldErrors(parsed.error));
    return sendAuditExport(request, reply, parsed.data, format);
  });
}
