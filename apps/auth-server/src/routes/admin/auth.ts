import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { authenticateApiKey } from "../../libraries/admin.ts";
import { audit } from "../../libraries/audit.ts";
import type { Actor } from "../../libraries/clients/index.ts";

/** Who is calling the admin API: an admin through an API key or a browser session. */
export interface AdminPrincipal {
  userId: string;
  via: "api-key" | "session";
}

declare module "fastify" {
  interface FastifyRequest {
    admin?: AdminPrincipal;
  }
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
    request.admin = { userId: user.id, via: "api-key" };
    return;
  }

  const current = await request.currentSession();
  if (!current) throw unauthenticated();
  if (!current.user.isAdmin) {
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
  request.admin = { userId: current.user.id, via: "session" };
}

/** The acting admin of a request that passed requireAdmin, for the audit row of its change. */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.admin) throw new AppError("UNAUTHENTICATED");
  return { actorId: request.admin.userId, meta: request.meta, via: request.admin.via };
}
