import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  createPermission,
  createRole,
  deletePermission,
  deleteRole,
  listPermissions,
  listRoles,
  type RoleScope,
  updatePermission,
  updateRole,
} from "../../libraries/authorization/index.ts";
import { type ClientRow, getClient, listClients } from "../../libraries/clients/index.ts";
import { seeOther } from "../pages/render.ts";
import { type ConsoleAdmin, consoleAccess } from "./guard.ts";
import {
  actionErrorOf,
  field,
  formConfig,
  listField,
  noticeFrom,
  pageConfig,
  renderConsole,
  renderWithError,
  type ShownError,
} from "./render.ts";

/** More than any app defines; what one page lists. */
const PAGE = { limit: 500 };

const param = (request: FastifyRequest, name: string) =>
  String((request.params as Record<string, string | undefined>)[name] ?? "");

/** The base URL of a scope's page: the app's roles page, or the global roles page. */
const baseOf = (scope: RoleScope) =>
  scope === null ? "/admin/roles" : `/admin/clients/${encodeURIComponent(scope)}/roles`;

/** The form's role fields as library input (description and permissions only when the form has them). */
function roleInput(body: unknown, scope: RoleScope, partial: boolean) {
  const name = field(body, "name", 200)?.trim();
  const description = field(body, "description", 1000);
  const input: Record<string, unknown> = {};
  if (name !== undefined || !partial) input.name = name ?? "";
  if (description !== undefined) input.description = description;
  if (scope !== null && field(body, "permissions", 20_000) !== undefined) {
    input.permissions = listField(body, "permissions");
  }
  return input;
}

function permissionInput(body: unknown, partial: boolean) {
  const name = field(body, "name", 200)?.trim();
  const description = field(body, "description", 1000);
  const input: Record<string, unknown> = {};
  if (name !== undefined || !partial) input.name = name ?? "";
  if (description !== undefined) input.description = description;
  return input;
}

/**
 * Roles and permissions in the console (#11, #14): each app's permissions and roles (list, create, rename, change,
 * delete) at /admin/clients/:id/roles, and the global roles at /admin/roles. Reads: support may; changes: admin.
 * Every change is the library function the admin API and the CLI call, audited with the admin's id.
 */
export async function rolePages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);
  const form = formConfig(app);

  async function show(
    request: FastifyRequest,
    reply: FastifyReply,
    admin: ConsoleAdmin,
    scope: RoleScope,
    shown?: ShownError,
  ) {
    const client: ClientRow | null = scope === null ? null : await getClient(app.ctx.db, scope);
    const data = {
      title: client ? `Roles of ${client.name}` : "Global roles",
      active: scope === null ? "/admin/roles" : "/admin/clients",
      notice: noticeFrom(request),
      client,
      base: baseOf(scope),
      roles: await listRoles(app.ctx, scope, PAGE),
      permissions: client ? await listPermissions(app.ctx, client.clientId, PAGE) : [],
      clients: client ? [] : await listClients(app.ctx.db, { limit: 500, includeDisabled: true }),
    };
    return shown
      ? renderWithError(request, reply, admin, "roles", data, shown)
      : renderConsole(request, reply, admin, "roles", data);
  }

  /** An admin-level change in a scope: on a shown error the page again with it, else back with the notice. */
  async function change(
    request: FastifyRequest,
    reply: FastifyReply,
    scope: RoleScope,
    run: (admin: ConsoleAdmin) => Promise<unknown>,
    notice: string,
  ) {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    try {
      await run(admin);
    } catch (error) {
      const shown = actionErrorOf(error);
      if (!shown) throw error;
      return show(request, reply, admin, scope, shown);
    }
    return seeOther(reply, `${baseOf(scope)}?notice=${notice}`);
  }

  const scopes: Array<[string, (request: FastifyRequest) => RoleScope]> = [
    ["/admin/roles", () => null],
    ["/admin/clients/:id/roles", (request) => param(request, "id")],
  ];
  for (const [base, scopeOf] of scopes) {
    app.get(base, page, async (request, reply) => {
      const admin = await consoleAccess(request, reply, "support");
      if (!admin) return reply;
      return show(request, reply, admin, scopeOf(request));
    });
    app.post(base, form, async (request, reply) => {
      const scope = scopeOf(request);
      return change(
        request,
        reply,
        scope,
        (admin) => createRole(app.ctx, scope, roleInput(request.body, scope, false), admin.actor),
        "role_created",
      );
    });
    app.post(`${base}/:roleId`, form, async (request, reply) => {
      const scope = scopeOf(request);
      return change(
        request,
        reply,
        scope,
        (admin) =>
          updateRole(app.ctx, scope, param(request, "roleId"), roleInput(request.body, scope, true), admin.actor),
        "role_saved",
      );
    });
    app.post(`${base}/:roleId/delete`, form, async (request, reply) => {
      const scope = scopeOf(request);
      return change(
        request,
        reply,
        scope,
        (admin) => deleteRole(app.ctx, scope, param(request, "roleId"), admin.actor),
        "role_deleted",
      );
    });
  }

  const permissions = "/admin/clients/:id/permissions";
  app.post(permissions, form, async (request, reply) => {
    const scope = param(request, "id");
    return change(
      request,
      reply,
      scope,
      (admin) => createPermission(app.ctx, scope, permissionInput(request.body, false), admin.actor),
      "permission_created",
    );
  });
  app.post(`${permissions}/:permissionId`, form, async (request, reply) => {
    const scope = param(request, "id");
    return change(
      request,
      reply,
      scope,
      (admin) =>
        updatePermission(
          app.ctx,
          scope,
          param(request, "permissionId"),
          permissionInput(request.body, true),
          admin.actor,
        ),
      "permission_saved",
    );
  });
  app.post(`${permissions}/:permissionId/delete`, form, async (request, reply) => {
    const scope = param(request, "id");
    return change(
      request,
      reply,
      scope,
      (admin) => deletePermission(app.ctx, scope, param(request, "permissionId"), admin.actor),
      "permission_deleted",
    );
  });
}
