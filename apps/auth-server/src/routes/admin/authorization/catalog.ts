import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError } from "../../../errors/index.ts";
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
} from "../../../libraries/authorization/index.ts";
import { actorOf } from "../auth.ts";
import { adminPlugin, libraryInput, paged, pageQuery, param, withWireNames } from "./wire.ts";

const CLIENTS = "/admin/api/v1/clients/:id";
const GLOBAL_ROLES = "/admin/api/v1/roles";
const CLIENT_ID = /^[A-Za-z0-9_-]{1,128}$/;

function clientIdOf(request: FastifyRequest): string {
  const id = param(request, "id");
  if (!CLIENT_ID.test(id)) throw new AppError("CLIENT_NOT_FOUND");
  return id;
}

const byName = pageQuery("name");

/**
 * The admin API for an app's permissions and roles, and for global roles:
 * `/admin/api/v1/clients/:clientId/permissions[/:permissionId]`, `/admin/api/v1/clients/:clientId/roles[/:roleId]`,
 * `/admin/api/v1/roles[/:roleId]`. Lists page by name (`?limit=&after=`); PATCH renames, describes or (roles) sets the
 * permission list; DELETE of a role removes its assignments, of a permission removes it from every role. Audited.
 */
export async function adminCatalogRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = adminPlugin(app, {
    [`${CLIENTS}/permissions`]: ["GET", "POST"],
    [`${CLIENTS}/permissions/:permissionId`]: ["PATCH", "DELETE"],
    [`${CLIENTS}/roles`]: ["GET", "POST"],
    [`${CLIENTS}/roles/:roleId`]: ["PATCH", "DELETE"],
    [GLOBAL_ROLES]: ["GET", "POST"],
    [`${GLOBAL_ROLES}/:roleId`]: ["PATCH", "DELETE"],
  });

  app.get(`${CLIENTS}/permissions`, routeConfig, async (request) => {
    const { limit, page } = byName(request);
    const rows = await listPermissions(app.ctx, clientIdOf(request), page);
    const { items, next_after } = paged(rows, limit, (p) => p.name);
    return { permissions: items, next_after };
  });

  app.post(`${CLIENTS}/permissions`, routeConfig, async (request, reply) => {
    const clientId = clientIdOf(request);
    const permission = await withWireNames(() =>
      createPermission(app.ctx, clientId, libraryInput(request.body), actorOf(request)),
    );
    reply.code(201);
    return permission;
  });

  app.patch(`${CLIENTS}/permissions/:permissionId`, routeConfig, async (request) => {
    const clientId = clientIdOf(request);
    return withWireNames(() =>
      updatePermission(app.ctx, clientId, param(request, "permissionId"), libraryInput(request.body), actorOf(request)),
    );
  });

  app.delete(`${CLIENTS}/permissions/:permissionId`, routeConfig, async (request) =>
    deletePermission(app.ctx, clientIdOf(request), param(request, "permissionId"), actorOf(request)),
  );

  // Roles: the same routes for an app's roles (under the client) and for the global ones.
  const roleRoutes = (base: string, scopeOf: (request: FastifyRequest) => RoleScope) => {
    app.get(base, routeConfig, async (request) => {
      const { limit, page } = byName(request);
      const rows = await listRoles(app.ctx, scopeOf(request), page);
      const { items, next_after } = paged(rows, limit, (r) => r.name);
      return { roles: items, next_after };
    });
    app.post(base, routeConfig, async (request, reply) => {
      const scope = scopeOf(request);
      const role = await withWireNames(() => createRole(app.ctx, scope, libraryInput(request.body), actorOf(request)));
      reply.code(201);
      return role;
    });
    app.patch(`${base}/:roleId`, routeConfig, async (request) => {
      const scope = scopeOf(request);
      return withWireNames(() =>
        updateRole(app.ctx, scope, param(request, "roleId"), libraryInput(request.body), actorOf(request)),
      );
    });
    app.delete(`${base}/:roleId`, routeConfig, async (request) =>
      deleteRole(app.ctx, scopeOf(request), param(request, "roleId"), actorOf(request)),
    );
  };
  roleRoutes(`${CLIENTS}/roles`, clientIdOf);
  roleRoutes(GLOBAL_ROLES, () => null);
}
