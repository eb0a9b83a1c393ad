import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { type AdminLevel, adminLevelOf, levelAllows } from "../../libraries/admin/levels.ts";
import { authenticateApiKey } from "../../libraries/admin.ts";
import { audit } from "../../libraries/audit.ts";
import type { Actor } from "../../libraries/clients/index.ts";
import { hasConfirmedTotp } from "../../libraries/mfa/factor.ts";

/** Who is calling the admin API: an admin through an API key or a browser session. */
export interface AdminPrincipal {
  userId: string;
  via: "api-key" | "session";
  level: AdminLevel;
}

declare module "fastify" {
  interface FastifyRequest {
    admin?: AdminPrincipal;
  }
  interface FastifyContextConfig {
    /**
     * The admin level a route needs. Unset: reads (GET, HEAD) need `support`, everything else `admin`. A change that
     * support may make (end a session, lift a suspension) says `adminLevel: "support"`.
     */
    adminLevel?: AdminLevel;
  }
}

/** The level a request needs: the route's own setting, else support for reads and admin for changes. */
export function neededLevel(request: FastifyRequest): AdminLevel {
  const configured = request.routeOptions.config.adminLevel;
  if (configured) return configured;
  return request.method === "GET" || request.method === "HEAD" ? "support" : "admin";
}

/** Refuses (403 FORBIDDEN, audited) an admin whose level is below what the route needs. */
async function checkLevel(request: FastifyRequest, userId: string, level: AdminLevel | null, via: string) {
  const need = neededLevel(request);
  if (levelAllows(level, need)) return;
  await audit(request.server.ctx.db, request.meta, {
    event: "admin.authorization_failed",
    outcome: "failure",
    userId,
    details: { via, need, have: level, method: request.method, route: request.routeOptions.url ?? null },
  });
  throw new AppError("FORBIDDEN", `This needs the ${need} admin level.`);
}

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

const isJson = (contentType: string | undefined) => /^application\/json\s*(;|$)/i.test(contentType ?? "");

function unauthenticated(): AppError {
  return new AppError(
    "UNAUTHENTICATED",
    "Send an admin API key as a Bearer token, or sign in as an admin.",
    undefined,
    {
      "www-authenticate": 'Bearer realm="tessera-admin"',
    },
  );
}

/**
 * onRequest hook for the admin API (runs before the body is parsed). `Authorization: Bearer <admin API key>` wins
 * when present (a wrong key is refused, never silently replaced by the cookie). Otherwise the browser session of an
 * admin is accepted, and because a cookie rides along on cross-site requests, state changes then also need a JSON
 * content type (a cross-site form cannot send one) and an `Origin` equal to the issuer's.
 */
export async function requireAdmin(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const ctx = request.server.ctx;
  const hasBody =
    request.headers["transfer-encoding"] !== undefined || Number(request.headers["content-length"] ?? 0) > 0;
  if (UNSAFE_METHODS.has(request.method) && hasBody && !isJson(request.headers["content-type"])) {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", "The admin API accepts application/json bodies only.");
  }
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,200})$/.exec(authorization);
    const user = match?.[1] ? await authenticateApiKey(ctx, match[1]) : null;
    if (!user) {
      await audit(ctx.db, request.meta, {
        event: "admin.authentication_failed",
        outcome: "failure",
        details: { method: "api-key" },
      });
      throw unauthenticated();
    }
    const level = adminLevelOf(user);
    await checkLevel(request, user.id, level, "api-key");
    request.admin = { userId: user.id, via: "api-key", level: level ?? "support" };
    return;
  }

  const current = await request.currentSession();
  if (!current) throw unauthenticated();
  const level = adminLevelOf(current.user);
  if (level === null) {
    await audit(ctx.db, request.meta, {
      event: "admin.authorization_failed",
      outcome: "failure",
      userId: current.user.id,
      sessionId: current.session.id,
    });
    throw new AppError("FORBIDDEN");
  }
  if (UNSAFE_METHODS.has(request.method)) {
    if (!isJson(request.headers["content-type"])) {
      throw new AppError("CSRF_INVALID", "Admin API calls from a browser session must send a JSON body.");
    }
    if (request.headers.origin !== new URL(ctx.config.issuer).origin) {
      throw new AppError("CSRF_INVALID", "Admin API calls from a browser session must come from this site.");
    }
  }
  // As for the console (#14): an admin's browser session reaches the admin API only with two-step verification on the
  // account and a session signed in with a code, or this API would be the way around the console's requirement.
  if (!current.session.amr.includes("otp") || !(await hasConfirmedTotp(ctx.db, current.user.id))) {
    throw new AppError("ADMIN_MFA_REQUIRED");
  }
  await checkLevel(request, current.user.id, level, "session");
  request.admin = { userId: current.user.id, via: "session", level };
}

/** The acting admin of a request that passed requireAdmin, for the audit row of its change. */
export function actorOf(request: FastifyRequest): Actor & { actorId: string } {
  if (!request.admin) throw new AppError("UNAUTHENTICATED");
  return { actorId: request.admin.userId, meta: request.meta, via: request.admin.via };
}
