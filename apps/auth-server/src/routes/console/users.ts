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
import { disableUser, enableUser } from "../../libraries/user-status.ts";
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
    const data = {
      title: profile.user.email,
      active: "/admin/users",
      notice: noticeFrom(request),
      profile,
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
