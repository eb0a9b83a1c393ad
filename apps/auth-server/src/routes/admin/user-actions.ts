import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { setAdminLevel } from "../../libraries/admin/levels.ts";
import { endSessionsBody, levelBody } from "../../libraries/admin/schemas.ts";
import {
  deleteUserAsAdmin,
  endUserSessionsAsAdmin,
  findUsers,
  resetTwoStep,
  sendPasswordResetAsAdmin,
  userProfile,
} from "../../libraries/admin/users.ts";
import { parse } from "../../validation.ts";
import { actorOf, requireAdmin } from "./auth.ts";

const BASE = "/admin/api/v1/users";
const emptyBody = z.strictObject({}).optional();
const searchQuery = z.strictObject({
  q: z.string().max(254).optional(),
  after: z.string().max(254).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});

const idParam = (request: FastifyRequest) => String((request.params as { id?: string }).id ?? "");

const userView = (u: {
  id: string;
  email: string;
  displayName: string | null;
  disabledAt: Date | null;
  createdAt: Date;
  emailVerifiedAt: Date | null;
}) => ({
  id: u.id,
  email: u.email,
  display_name: u.displayName,
  email_verified: u.emailVerifiedAt !== null,
  created_at: u.createdAt.toISOString(),
  disabled_at: u.disabledAt?.toISOString() ?? null,
});

/**
 * The admin API's user actions (#14), the same library functions the console calls: search, profile, end sessions
 * (support may), two-step reset, password reset email, delete, admin level. Disable/enable are in users.ts.
 */
export async function adminUserActionRoutes(app: FastifyInstance): Promise<void> {
  const rateLimit = routeRateLimit(app.ctx.config, "admin");
  const routeConfig = { config: { rateLimit } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });

  app.get(BASE, routeConfig, async (request) => {
    const query = parse(searchQuery, request.query);
    const found = await findUsers(app.ctx, query);
    return { users: found.users.map(userView), next_after: found.next };
  });

  app.get(`${BASE}/:id`, routeConfig, async (request) => {
    const profile = await userProfile(app.ctx, idParam(request));
    return {
      ...userView(profile.user),
      admin_level: profile.level,
      two_step: { enabled: profile.twoStep.enabled, recovery_codes_left: profile.twoStep.recoveryCodesLeft },
      sessions: profile.sessions.map((s) => ({
        id: s.id,
        created_at: s.createdAt.toISOString(),
        last_seen_at: s.lastSeenAt.toISOString(),
        expires_at: s.expiresAt.toISOString(),
        ip: s.ip,
        user_agent: s.userAgent,
        amr: s.amr,
      })),
      identities: profile.identities.map((i) => ({
        id: i.id,
        provider: i.providerSlug,
        provider_name: i.providerName,
        email: i.email,
        linked_at: i.linkedAt.toISOString(),
        last_sign_in_at: i.lastSignInAt?.toISOString() ?? null,
      })),
      passkeys: profile.passkeys.map((k) => ({
        id: k.id,
        name: k.name,
        backed_up: k.backedUp,
        created_at: k.createdAt.toISOString(),
        last_used_at: k.lastUsedAt?.toISOString() ?? null,
      })),
    };
  });

  app.post(`${BASE}/:id/sessions/end`, { config: { rateLimit, adminLevel: "support" } }, async (request) => {
    const body = parse(endSessionsBody, request.body);
    const ended = await endUserSessionsAsAdmin(
      app.ctx,
      { userId: idParam(request), sessionId: body?.session_id ?? null },
      actorOf(request),
    );
    return { sessions_ended: ended };
  });

  app.post(`${BASE}/:id/two-step/reset`, routeConfig, async (request) => {
    parse(emptyBody, request.body);
    return { removed: await resetTwoStep(app.ctx, idParam(request), actorOf(request)) };
  });

  app.post(`${BASE}/:id/password-reset`, routeConfig, async (request, reply) => {
    parse(emptyBody, request.body);
    await sendPasswordResetAsAdmin(app.ctx, request.log, idParam(request), actorOf(request));
    return reply.code(202).send({ sent: true });
  });

  app.delete(`${BASE}/:id`, routeConfig, async (request, reply) => {
    parse(emptyBody, request.body);
    await deleteUserAsAdmin(app.ctx, idParam(request), actorOf(request));
    return reply.code(204).send();
  });

  app.put(`${BASE}/:id/admin-level`, routeConfig, async (request) => {
    const { level } = parse(levelBody, request.body);
    const result = await setAdminLevel(app.ctx, idParam(request), level === "none" ? null : level, actorOf(request));
    return { id: result.id, email: result.email, admin_level: result.level };
  });
}
