import type { Executor } from "@tessera/db";
import type { CoreContext } from "../context.ts";
import {
  findLiveSessionByHash,
  insertSession,
  listLiveSessions,
  revokeSessions,
  type SessionRow,
  type UserRow,
  updateSession,
  updateUnrevokedSession,
} from "../queries/sessions.ts";
import type { RequestMeta } from "./audit.ts";
import { addSeconds } from "./clock.ts";
import { randomToken, sha256 } from "./crypto.ts";

export type { SessionRow, UserRow } from "../queries/sessions.ts";

/** Writes to last_seen_at are skipped within this many seconds of the previous one (keeps hot paths read-only). */
const TOUCH_INTERVAL_SECONDS = 60;

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
 * Resolves a session cookie value to a live session and user. Expiry (absolute and idle) is checked on every use;
 * the idle deadline slides forward at most once a minute.
 */
export async function resolveSession(
  deps: CoreContext,
  token: string | undefined,
): Promise<{ session: SessionRow; user: UserRow } | null> {
  if (!token || token.length > 200) return null;
  const now = deps.clock.now();
  const found = await findLiveSessionByHash(deps.db, sha256(token), now);
  if (!found) return null;
  if (now.getTime() - found.session.lastSeenAt.getTime() >= TOUCH_INTERVAL_SECONDS * 1000) {
    const idleExpiresAt = addSeconds(now, deps.config.sessions.idleTtlSeconds);
    const updated = await updateSession(deps.db, found.session.id, {
      lastSeenAt: now,
      idleExpiresAt: idleExpiresAt < found.session.expiresAt ? idleExpiresAt : found.session.expiresAt,
    });
    if (updated) found.session = updated;
  }
  return found;
}

export async function listSessions(deps: CoreContext, userId: string): Promise<SessionRow[]> {
  return listLiveSessions(deps.db, userId, deps.clock.now());
}

/** Ends sessions (every app in them: refresh tokens revoked, back-channel logouts queued). Returns the ids ended. */
export async function endSessions(
  deps: CoreContext,
  db: Executor,
  where: { ids?: string[]; userId?: string; exceptId?: string },
  reason: string,
): Promise<string[]> {
  return revokeSessions(db, where, reason, deps.clock.now());
}
