import type { Executor } from "@tessera/db";
import type { Locale } from "../i18n/index.ts";
import { insertAuditEvent } from "../queries/audit.ts";
import { countAuditEvent } from "./metrics.ts";

/** Where a request came from, for audit rows. */
export interface RequestMeta {
  ip: string | undefined;
  userAgent: string | undefined;
  /** The language the request asks for (i18n `requestLanguage`): emails use it when the user saved none. */
  locale?: Locale | undefined;
}

export interface AuditEvent {
  event: string;
  outcome: "success" | "failure";
  userId?: string | null | undefined;
  actorId?: string | null | undefined;
  clientId?: string | null | undefined;
  sessionId?: string | null | undefined;
  /** Never secrets, passwords or raw tokens: at most a hash prefix. */
  details?: Record<string, unknown> | undefined;
}

/** The row `audit()` writes for an event (for statements that write it themselves, like a fresh session's). */
export function auditRow(meta: RequestMeta, event: AuditEvent) {
  return {
    event: event.event,
    outcome: event.outcome,
    userId: event.userId ?? null,
    actorId: event.actorId ?? null,
    clientId: event.clientId ?? null,
    sessionId: event.sessionId ?? null,
    ip: meta.ip ?? null,
    userAgent: meta.userAgent?.slice(0, 512) ?? null,
    details: event.details ?? null,
  };
}

/**
 * Writes one audit row: who, what, when, where, outcome. Pass the transaction handle when the event belongs to a
 * state change, so the row and the change commit together.
 */
export async function audit(db: Executor, meta: RequestMeta, event: AuditEvent): Promise<void> {
  await insertAuditEvent(db, auditRow(meta, event));
  countAuditEvent(event.event);
}
