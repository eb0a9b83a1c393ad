import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { createApiKeyAs, listApiKeys, revokeApiKey } from "../../libraries/admin/api-keys.ts";
import { clearAccountLock, listAccountLocks, rotateSigningKeyAsAdmin } from "../../libraries/admin/security.ts";
import { listSigningKeys } from "../../libraries/keys/index.ts";
import { liftIpSuspension, listIpSuspensions, unlockAccount } from "../../libraries/throttle/operator.ts";
import { seeOther } from "../pages/render.ts";
import { type ConsoleAdmin, consoleAccess } from "./guard.ts";
import {
  field,
  formConfig,
  formErrorOf,
  noticeFrom,
  pageConfig,
  renderConsole,
  renderWithError,
  type ShownError,
} from "./render.ts";

const back = (notice: string) => `/admin/security?notice=${notice}`;

/**
 * Security in the console (#14): IP suspensions (lift: support may), account locks (clear: support may), signing keys
 * (rotate: admin), admin API keys (create, shown once; revoke: admin).
 */
export async function securityPages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);
  const form = formConfig(app);

  async function show(
    request: FastifyRequest,
    reply: FastifyReply,
    admin: ConsoleAdmin,
    extra: Record<string, unknown> = {},
    shown?: ShownError,
  ) {
    const data = {
      title: "Security",
      active: "/admin/security",
      notice: noticeFrom(request),
      suspensions: await listIpSuspensions(app.ctx),
      locks: await listAccountLocks(app.ctx),
      signingKeys: await listSigningKeys(app.ctx),
      apiKeys: await listApiKeys(app.ctx),
      ...extra,
    };
    return shown
      ? renderWithError(request, reply, admin, "security", data, shown)
      : renderConsole(request, reply, admin, "security", data);
  }

  app.get("/admin/security", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    return show(request, reply, admin);
  });

  app.post("/admin/security/ip-suspensions/lift", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    await liftIpSuspension(app.ctx, request.meta, {
      ip: field(request.body, "ip", 64) ?? "",
      actorId: admin.actor.actorId,
    });
    return seeOther(reply, back("ip_lifted"));
  });

  app.post("/admin/security/account-locks/clear", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const email = field(request.body, "email", 254)?.trim();
    try {
      if (email) await unlockAccount(app.ctx, request.meta, { email, actorId: admin.actor.actorId });
      else await clearAccountLock(app.ctx, field(request.body, "key", 100) ?? "", admin.actor);
    } catch (error) {
      const shown = formErrorOf(error);
      if (!shown) throw error;
      return show(request, reply, admin, {}, shown);
    }
    return seeOther(reply, back("lock_cleared"));
  });

  app.post("/admin/security/signing-keys/rotate", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    await rotateSigningKeyAsAdmin(app.ctx, undefined, admin.actor);
    return seeOther(reply, back("key_rotated"));
  });

  app.post("/admin/security/api-keys", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    try {
      const { apiKey, key } = await createApiKeyAs(
        app.ctx,
        {
          name: field(request.body, "name", 200) ?? "",
          ownerEmail: field(request.body, "owner_email", 254) || undefined,
        },
        admin.actor,
      );
      return show(request, reply, admin, { createdKey: { name: apiKey.name, key } });
    } catch (error) {
      const shown = formErrorOf(error);
      if (!shown) throw error;
      const values = {
        name: field(request.body, "name", 200) ?? "",
        owner_email: field(request.body, "owner_email", 254) ?? "",
      };
      return show(request, reply, admin, { values }, shown);
    }
  });

  app.post("/admin/security/api-keys/:id/revoke", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    await revokeApiKey(app.ctx, String((request.params as { id?: string }).id ?? ""), admin.actor);
    return seeOther(reply, back("api_key_revoked"));
  });
}
