import { randomUUID } from "node:crypto";
import type { Executor } from "@tessera/db";
import type { Config } from "../config/index.ts";
import type { CoreContext } from "../context.ts";
import {
  findBackchannelParticipants,
  findLiveSessionByHash,
  insertBackchannelLogoutJobs,
  insertSession,
  insertSessionWithAudit,
  listLiveSessions,
  revokeRefreshTokensOfSessions,
  revokeSessionRows,
  type SessionRow,
  type UserRow,
  updateSession,
  updateUnrevokedSession,
} from "../queries/sessions.ts";
import { type AuditEvent, auditRow, type RequestMeta } from "./audit.ts";
import { addSeconds } from "./clock.ts";
import { randomToken, sha256 } from "./crypto.ts";
import { countAuditEvent } from "./metrics.ts";
import { enqueueWebhook } from "./webhooks/index.ts";

export type { SessionRow, UserRow } from "../queries/sessions.ts";

/**
 * Whether a session can still be used at `now`: `ended` once revoked, `expired` once its absolute or idle deadline
 * has passed (a deadline equal to `now` has passed), else `live`. The JS form of the queries' `sessionIsLive`.
 */
export function sessionValidity(
  session: Pick<SessionRow, "revokedAt" | "expiresAt" | "idleExpiresAt">,
  now: Date,
): "live" | "ended" | "expired" {
  if (session.revokedAt) return "ended";
  if (session.expiresAt <= now || session.idleExpiresAt <= now) return "expired";
  return "live";
}

/**
 * Activity at `now` slides the idle deadline forward by SESSION_IDLE_TTL_SECONDS, never past the absolute expiry.
 * Returns the columns to write.
 */
export function slideIdle(
  session: Pick<SessionRow, "expiresAt">,
  now: Date,
  config: { sessions: Pick<Config["sessions"], "idleTtlSeconds"> },
): { lastSeenAt: Date; idleExpiresAt: Date } {
  const idle = addSeconds(now, config.sessions.idleTtlSeconds);
  return { lastSeenAt: now, idleExpiresAt: idle < session.expiresAt ? idle : session.expiresAt };
}

/**
 * The slide of activity at `now`, or null when it is not due: when it would move the idle deadline by less than
 * idleSlideStepSeconds. The same rule as the refresh statement's `slide_due` (queries/refresh-rotation.ts).
 */
export function dueSlide(
  session: Pick<SessionRow, "expiresAt" | "idleExpiresAt">,
  now: Date,
  config: { sessions: Pick<Config["sessions"], "idleTtlSeconds"> },
): { lastSeenAt: Date; idleExpiresAt: Date } | null {
  const slid = slideIdle(session, now, config);
  const step = idleSlideStepSeconds(config) * 1000;
  return slid.idleExpiresAt.getTime() >= session.idleExpiresAt.getTime() + step ? slid : null;
}

/**
 * Activity moves the idle deadline, but the session row is written only when the deadline would move by at least
 * this step: a tenth of SESSION_IDLE_TTL_SECONDS, at most a minute. So a session is never ended sooner than 90% of the
 * idle TTL after its last use, and refreshes and page views of one session (every app of one user) do not each
 * rewrite its row.
 */
export function idleSlideStepSeconds(config: { sessions: Pick<Config["sessions"], "idleTtlSeconds"> }): number {
  return Math.min(60, Math.floor(config.sessions.idleTtlSeconds / 10));
}

/**
 * Starts a sign-in session, or — when the browser already has a live session of the same user — re-authenticates it:
 * the expiry of the session (and so of every client's refresh-token chain in it) is extended, and the cookie value is
 * rotated so a value planted before sign-in is worthless (no fixation). Returns the new cookie value once; only its
 * SHA-256 is stored.
 */
export async function signIn(
  deps: CoreContext,
  db: Executor,
  input: { userId: string; amr: string[]; meta: RequestMeta; existing?: SessionRow | null },
): Promise<{ session: SessionRow; token: string }> {
  const { token, timing } = newSessionValues(deps, input);
  if (input.existing && input.existing.userId === input.userId && !input.existing.revokedAt) {
    // `existing` was read before the password check: if the session ended meanwhile (logout elsewhere, reuse
    // detection), extending it would hand out a cookie of an ended session. A new one starts instead.
    const updated = await updateUnrevokedSession(db, input.existing.id, timing);
    if (updated) return { session: updated, token };
  }
  const session = await insertSession(db, { userId: input.userId, ...timing });
  return { session, token };
}

/**
 * A fresh session and its audit event (`audit`, with the new session's id), written together by one statement: no
 * transaction is needed for the two to commit together or not at all. Returns the new cookie value once.
 */
export async function startFreshSession(
  deps: CoreContext,
  db: Executor,
  input: { userId: string; amr: string[]; meta: RequestMeta; audit: AuditEvent & { details: Record<string, unknown> } },
): Promise<{ session: SessionRow; token: string }> {
  const { token, timing } = newSessionValues(deps, input);
  const id = randomUUID();
  const { sessionId: _, ...row } = auditRow(input.meta, input.audit);
  const session = await insertSessionWithAudit(
    db,
    { id, userId: input.userId, ...timing },
    { ...row, details: input.audit.details },
  );
  countAuditEvent(input.audit.event);
  return { session, token };
}

/** A new cookie value and the columns a sign-in sets from `now`. */
function newSessionValues(deps: CoreContext, input: { amr: string[]; meta: RequestMeta }) {
  const now = deps.clock.now();
  const token = randomToken();
  const timing = {
    tokenHash: sha256(token),
    authenticatedAt: now,
    lastSeenAt: now,
    expiresAt: addSeconds(now, deps.config.sessions.absoluteTtlSeconds),
    idleExpiresAt: addSeconds(now, deps.config.sessions.idleTtlSeconds),
    ip: input.meta.ip ?? null,
    userAgent: input.meta.userAgent?.slice(0, 512) ?? null,
    amr: input.amr,
  };
  return { token, timing };
}

/**
 * Resolves a session cookie value to a live session and user. Expiry (absolute and idle) is checked on every use;
 * the idle deadline slides forward when that is due (dueSlide).
 */
export async function resolveSession(
  deps: CoreContext,
  token: string | undefined,
): Promise<{ session: SessionRow; user: UserRow } | null> {
  if (!token || token.length > 200) return null;
  const now = deps.clock.now();
  const found = await findLiveSessionByHash(deps.db, sha256(token), now);
  if (!found) return null;
  const slid = dueSlide(found.session, now, deps.config);
  if (slid) {
    const updated = await updateSession(deps.db, found.session.id, slid);
    if (updated) found.session = updated;
  }
  return found;
}

export async function listSessions(deps: CoreContext, userId: string): Promise<SessionRow[]> {
  return listLiveSessions(deps.db, userId, deps.clock.now());
}

/**
 * Single sign-out: ends sessions and with them every app in them. The sessions are revoked, every refresh token in
 * them is revoked, and a back-channel logout is queued for every client that took part (holds a refresh token or was
 * issued a code in the session) and has a back-channel URI. Run it inside the caller's transaction (`db`), so the
 * three happen together or not at all. Returns the ids this call ended (sessions already ended are left alone).
 */
export async function endSessions(
  deps: CoreContext,
  db: Executor,
  where: { ids?: string[]; userId?: string; exceptId?: string },
  reason: string,
): Promise<string[]> {
  const now = deps.clock.now();
  const ended = await revokeSessionRows(db, where, reason, now);
  if (ended.length === 0) return [];
  await revokeRefreshTokensOfSessions(db, ended, now);
  await insertBackchannelLogoutJobs(db, await findBackchannelParticipants(db, ended));
  await enqueueWebhook(deps, db, { type: "session.ended", sessionIds: ended, reason });
  return ended;
}
