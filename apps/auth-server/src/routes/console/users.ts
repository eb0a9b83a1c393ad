import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type AdminLevel, setAdminLevel } from "../../libraries/admin/levels.ts";
import { confirmStepUp } from "../../libraries/admin/step-up.ts";
import {
  deleteUserAsAdmin,
  endUserSessionsAsAdmin,
  findUsers,
  resetTwoStep,
  sendPasswordResetAsAdmin,
  userProfile,
} from "../../libraries/admin/users.ts";
import {
  assignRole,
  grantEntitlement,
  listAllRoles,
  revokeEntitlement,
  unassignRole,
  userAuthorizationOverview,
} from "../../libraries/authorization/index.ts";
import { billingOverview } from "../../libraries/billing/account.ts";
import { listClients } from "../../libraries/clients/index.ts";
import { disableUser, enableUser } from "../../libraries/user-status.ts";
import { seeOther } from "../pages/render.ts";
import { type ConsoleAdmin, consoleAccess } from "./guard.ts";
import {
  actionErrorOf,
  expiryField,
  field,
  formConfig,
  formErrorOf,
  listField,
  noticeFrom,
  pageConfig,
  renderConsole,
  renderWithError,
  type ShownError,
} from "./render.ts";

const idOf = (request: FastifyRequest) => String((request.params as { id?: string }).id ?? "");
const userUrl = (id: string, notice: string) => `/admin/users/${encodeURIComponent(id)}?notice=${notice}`;

/**
 * Users in the console (#14): search with paging, a profile with sessions (end one or all: support may), two-step
 * reset, disable/enable, password reset email, delete and admin level (these two with a fresh code or password).
 */
export async function userPages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);
  const form = formConfig(app);

  async function showUser(
    request: FastifyRequest,
    reply: FastifyReply,
    admin: ConsoleAdmin,
    id: string,
    shown?: ShownError & { form: string },
  ) {
    const profile = await userProfile(app.ctx, id);
    const [authorization, roles, billing, apps] = await Promise.all([
      userAuthorizationOverview(app.ctx, profile.user.id),
      listAllRoles(app.ctx, 500),
      billingOverview(app.ctx, profile.user.id),
      listClients(app.ctx.db, { limit: 500, includeDisabled: true }),
    ]);
    const appNames = new Map(apps.map((c) => [c.clientId, c.name]));
    const roleChoices = roles.map((r) => ({
      id: r.id,
      label: `${r.client_id ? (appNames.get(r.client_id) ?? r.client_id) : "Global"} · ${r.name}`,
    }));
    const data = {
      title: profile.user.email,
      active: "/admin/users",
      notice: noticeFrom(request),
      profile,
      authorization,
      roleChoices,
      billing,
      isSelf: profile.user.id === admin.current.user.id,
      failedForm: shown?.form,
      stepErrors: shown?.errors ?? {},
    };
    return shown
      ? renderWithError(request, reply, admin, "user", data, { ...shown, errors: {} })
      : renderConsole(request, reply, admin, "user", data);
  }

  app.get("/admin/users", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const query = request.query as Record<string, unknown>;
    const q = typeof query.q === "string" ? query.q.slice(0, 254) : "";
    const after = typeof query.after === "string" ? query.after.slice(0, 254) : undefined;
    const found = await findUsers(app.ctx, { q, after, limit: 25 });
    return renderConsole(request, reply, admin, "users", {
      title: "Users",
      active: "/admin/users",
      notice: noticeFrom(request),
      q,
      users: found.users,
      next: found.next ? `/admin/users?${new URLSearchParams({ q, after: found.next })}` : null,
    });
  });

  app.get("/admin/users/:id", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    return showUser(request, reply, admin, idOf(request));
  });

  app.post("/admin/users/:id/sessions/end", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const id = idOf(request);
    const sessionId = field(request.body, "session_id", 64) ?? null;
    await endUserSessionsAsAdmin(app.ctx, { userId: id, sessionId }, admin.actor);
    return seeOther(reply, userUrl(id, "sessions_ended"));
  });

  const simple: Array<
    [string, string, (id: string, admin: ConsoleAdmin, request: FastifyRequest) => Promise<unknown>]
  > = [
    ["two-step/reset", "mfa_reset", (id, admin) => resetTwoStep(app.ctx, id, admin.actor)],
    ["disable", "user_disabled", (id, admin) => disableUser(app.ctx, id, admin.actor)],
    ["enable", "user_enabled", (id, admin) => enableUser(app.ctx, id, admin.actor)],
    [
      "password-reset",
      "reset_sent",
      (id, admin, request) => sendPasswordResetAsAdmin(app.ctx, request.log, id, admin.actor),
    ],
  ];
  for (const [path, notice, run] of simple) {
    app.post(`/admin/users/:id/${path}`, form, async (request, reply) => {
      const admin = await consoleAccess(request, reply, "admin");
      if (!admin) return reply;
      const id = idOf(request);
      try {
        await run(id, admin, request);
      } catch (error) {
        const shown = formErrorOf(error);
        if (!shown) throw error;
        return showUser(request, reply, admin, id, { ...shown, form: path });
      }
      return seeOther(reply, userUrl(id, notice));
    });
  }

  /** Roles and entitlements (#11): assign with an optional expiry, take away; grant and revoke admin grants. */
  const authorization: Array<
    [string, string, (id: string, admin: ConsoleAdmin, request: FastifyRequest) => Promise<unknown>]
  > = [
    [
      "roles",
      "role_assigned",
      (id, admin, request) =>
        assignRole(
          app.ctx,
          id,
          { roleId: field(request.body, "role_id", 64) ?? "", expiresAt: expiryField(request.body) },
          admin.actor,
        ),
    ],
    [
      "roles/:roleId/unassign",
      "role_unassigned",
      (id, admin, request) =>
        unassignRole(app.ctx, id, String((request.params as { roleId?: string }).roleId ?? ""), admin.actor),
    ],
    [
      "entitlements",
      "entitlement_granted",
      (id, admin, request) => {
        const clientIds = listField(request.body, "client_ids");
        return grantEntitlement(
          app.ctx,
          id,
          {
            name: field(request.body, "name", 200)?.trim() ?? "",
            ...(clientIds.length ? { clientIds } : {}),
            expiresAt: expiryField(request.body),
          },
          admin.actor,
        );
      },
    ],
    [
      "entitlements/revoke",
      "entitlement_revoked",
      (id, admin, request) => revokeEntitlement(app.ctx, id, field(request.body, "name", 200) ?? "", admin.actor),
    ],
  ];
  for (const [path, notice, run] of authorization) {
    app.post(`/admin/users/:id/${path}`, form, async (request, reply) => {
      const admin = await consoleAccess(request, reply, "admin");
      if (!admin) return reply;
      const id = idOf(request);
      try {
        await run(id, admin, request);
      } catch (error) {
        const shown = actionErrorOf(error);
        if (!shown) throw error;
        return showUser(request, reply, admin, id, { ...shown, form: path });
      }
      return seeOther(reply, userUrl(id, notice));
    });
  }

  /** Sensitive actions: a fresh code or password first (counted like sign-in guesses). */
  const sensitive: Array<[string, (id: string, admin: ConsoleAdmin, request: FastifyRequest) => Promise<string>]> = [
    [
      "delete",
      async (id, admin) => {
        await deleteUserAsAdmin(app.ctx, id, admin.actor);
        return "/admin/users?notice=user_deleted";
      },
    ],
    [
      "level",
      async (id, admin, request) => {
        const raw = field(request.body, "level", 10);
        const level = raw === "none" ? null : (raw as AdminLevel);
        await setAdminLevel(app.ctx, id, level, admin.actor);
        return userUrl(id, "level_changed");
      },
    ],
  ];
  for (const [path, run] of sensitive) {
    app.post(`/admin/users/:id/${path}`, form, async (request, reply) => {
      const admin = await consoleAccess(request, reply, "admin");
      if (!admin) return reply;
      const id = idOf(request);
      try {
        await confirmStepUp(app.ctx, request.meta, {
          user: admin.current.user,
          code: field(request.body, "confirm_code", 32)?.trim(),
          password: field(request.body, "confirm_password", 1024),
        });
        return seeOther(reply, await run(id, admin, request));
      } catch (error) {
        const shown = formErrorOf(error);
        if (!shown) throw error;
        return showUser(request, reply, admin, id, { ...shown, form: path });
      }
    });
  }
}
