import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import type { CurrentSession } from "../../http/session.ts";
import { type AdminLevel, adminLevelOf, levelAllows } from "../../libraries/admin/levels.ts";
import { audit } from "../../libraries/audit.ts";
import type { Actor } from "../../libraries/clients/index.ts";
import { hasConfirmedTotp } from "../../libraries/mfa/factor.ts";
import { seeOther } from "../pages/render.ts";

/** The admin using the console, for the pages and for the audit rows of their actions. */
export interface ConsoleAdmin {
  current: CurrentSession;
  level: AdminLevel;
  actor: Actor & { actorId: string };
}

/**
 * Console access, checked on every console route (GET and POST):
 *   no session                      → 303 to the hosted sign-in page, coming back here
 *   not an admin                    → 403 FORBIDDEN (audited)
 *   no two-step verification        → 303 to /account/mfa to set it up first
 *   session signed in without code  → 303 to the sign-in form again (prompt=login), so the console session has amr otp
 *   below the level the route needs → 403 FORBIDDEN (audited)
 * Returns null when it has answered (a redirect); the route then returns `reply`.
 */
export async function consoleAccess(
  request: FastifyRequest,
  reply: FastifyReply,
  need: AdminLevel,
): Promise<ConsoleAdmin | null> {
  const ctx = request.server.ctx;
  const here = request.method === "GET" ? request.url : "/admin";
  const current = await request.currentSession();
  if (!current) {
    seeOther(reply, `/login?return_to=${encodeURIComponent(here)}`);
    return null;
  }
  const level = adminLevelOf(current.user);
  if (level === null || !levelAllows(level, need)) {
    await audit(ctx.db, request.meta, {
      event: "admin.authorization_failed",
      outcome: "failure",
      userId: current.user.id,
      sessionId: current.session.id,
      details: { via: "console", need, have: level, method: request.method, route: request.routeOptions.url ?? null },
    });
    throw new AppError("FORBIDDEN", level === null ? "The console is for admins." : `This needs the ${need} level.`);
  }
  if (!(await hasConfirmedTotp(ctx.db, current.user.id))) {
    seeOther(reply, "/account/mfa");
    return null;
  }
  if (!current.session.amr.includes("otp")) {
    seeOther(reply, `/login?prompt=login&return_to=${encodeURIComponent(here)}`);
    return null;
  }
  return {
    current,
    level,
    actor: { actorId: current.user.id, meta: request.meta, via: "console" },
  };
}
