import { isIP } from "node:net";
import { z } from "zod";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { type AuditEventRow, type AuditFilter, selectAuditEvents } from "../../queries/audit-log.ts";

export type { AuditEventRow, AuditFilter } from "../../queries/audit-log.ts";

/**
 * The queryable audit log (#14): the same filters for the admin API, its export and the console page. Paging is by
 * an opaque cursor (the last id seen); the export walks the same keyset in batches, so memory stays bounded by one
 * batch whatever the size of the log.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const blankToUndefined = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(blankToUndefined, schema.optional());

/** The wire query (`?user=&client=&event=&ip=&from=&to=&cursor=&limit=`), shared by API, export and console. */
export const auditQuerySchema = z.object({
  user: optional(z.string().trim().regex(UUID, "must be a user id")),
  client: optional(z.string().trim().max(128, "must be at most 128 characters")),
  event: optional(
    z
      .string()
      .trim()
      .regex(/^[a-z0-9_.]{1,100}\*?$/, "must be an event name like user.signed_in, or a prefix like user.*"),
  ),
  ip: optional(
    z
      .string()
      .trim()
      .max(64)
      .refine((v) => isIP(v) !== 0, "must be an IP address"),
  ),
  from: optional(z.coerce.date({ error: "must be a date and time (ISO 8601)" })),
  to: optional(z.coerce.date({ error: "must be a date and time (ISO 8601)" })),
  cursor: optional(z.string().regex(/^[A-Za-z0-9_-]{1,24}$/, "is not a cursor from this log")),
  limit: optional(z.coerce.number().int().min(1).max(500)),
});

export type AuditQuery = z.infer<typeof auditQuerySchema>;

export const encodeCursor = (id: number) => Buffer.from(`a:${id}`).toString("base64url");

function decodeCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  const match = /^a:(\d{1,18})$/.exec(Buffer.from(cursor, "base64url").toString());
  const id = match?.[1] ? Number(match[1]) : Number.NaN;
  if (!Number.isSafeInteger(id)) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "cursor", message: "is not a cursor from this log" }]);
  }
  return id;
}

export function filterOf(query: AuditQuery): AuditFilter {
  return {
    userId: query.user,
    clientId: query.client,
    event: query.event,
    ip: query.ip,
    from: query.from,
    to: query.to,
  };
}

export interface AuditPage {
  events: AuditEventRow[];
  nextCursor: string | null;
}

/** One page of the filtered log, newest first, and the cursor of the next page (null on the last). */
export async function listAuditEvents(deps: Pick<CoreContext, "db">, query: AuditQuery): Promise<AuditPage> {
  const limit = query.limit ?? 50;
  const rows = await selectAuditEvents(deps.db, filterOf(query), decodeCursor(query.cursor), limit + 1);
  const events = rows.slice(0, limit);
  const last = events.at(-1);
  return { events, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}

/** Rows per database round trip of an export: the most the export ever holds in memory. */
export const EXPORT_BATCH_SIZE = 1000;

/** Every matching event, newest first, fetched `EXPORT_BATCH_SIZE` at a time (cursor and limit are ignored). */
export async function* exportAuditEvents(
  deps: Pick<CoreContext, "db">,
  query: AuditQuery,
  options: { batchSize?: number; runBatch?: <T>(step: () => Promise<T>) => Promise<T> } = {},
): AsyncGenerator<AuditEventRow> {
  const filter = filterOf(query);
  const batchSize = options.batchSize ?? EXPORT_BATCH_SIZE;
  const runBatch = options.runBatch ?? ((step) => step());
  let before: number | undefined;
  for (;;) {
    const cursor = before;
    const rows = await runBatch(() => selectAuditEvents(deps.db, filter, cursor, batchSize));
    for (const row of rows) yield row;
    const last = rows.at(-1);
    if (!last || rows.length < batchSize) return;
    before = last.id;
  }
}

/** The wire form of an event (API JSON and NDJSON lines). */
export function auditEventView(row: AuditEventRow) {
  return {
    id: String(row.id),
    at: row.at.toISOString(),
    event: row.event,
    outcome: row.outcome,
    user_id: row.userId,
    actor_id: row.actorId,
    client_id: row.clientId,
    session_id: row.sessionId,
    ip: row.ip,
    user_agent: row.userAgent,
    details: row.details,
  };
}

export const CSV_COLUMNS = [
  "id",
  "at",
  "event",
  "outcome",
  "user_id",
  "actor_id",
  "client_id",
  "session_id",
  "ip",
  "user_agent",
  "details",
] as const;

/**
 * One CSV field (RFC 4180 quoting). A value a spreadsheet would run as a formula (starting with = + - @, tab or CR)
 * gets a leading apostrophe: user agents and client ids come from strangers (OWASP "CSV injection").
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return "";
  let text = typeof value === "string" ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(row: AuditEventRow): string {
  const view = auditEventView(row);
  return `${CSV_COLUMNS.map((c) => csvField(view[c])).join(",")}\r\n`;
}
