import type { FastifyInstance } from "fastify";
import {
  assignRole,
  grantEntitlement,
  listUserEntitlements,
  listUserRoles,
  revokeEntitlement,
  unassignRole,
} from "../../../libraries/authorization/index.ts";
import { actorOf } from "../auth.ts";
import { adminPlugin, libraryInput, paged, pageQuery, param, withWireNames } from "./wire.ts";

const USERS = "/admin/api/v1/users/:id";
const byId = pageQuery("id");

/**
 * The admin API for what one user has: `/admin/api/v1/users/:userId/roles` (list, assign with `role_id` and an
 * optional `expires_at`; assigning again replaces the expiry; DELETE `/roles/:roleId` unassigns) and
 * `/admin/api/v1/users/:userId/entitlements` (list every grant, any source; grant by `name` with optional
 * `client_ids` and `expires_at`; DELETE `/entitlements/:name` removes the ADMIN grant only, purchases keep theirs).
 */
export async function adminUserAuthorizationRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = adminPlugin(app, {
    [`${USERS}/roles`]: ["GET", "POST"],
    [`${USERS}/roles/:roleId`]: ["DELETE"],
    [`${USERS}/entitlements`]: ["GET", "POST"],
    [`${USERS}/entitlements/:name`]: ["DELETE"],
  });

  app.get(`${USERS}/roles`, routeConfig, async (request) => {
    const { limit, page } = byId(request);
    const rows = await listUserRoles(app.ctx, param(request, "id"), page);
    const { items, next_after } = paged(rows, limit, (r) => r.role_id);
    return { roles: items, next_after };
  });

  app.post(`${USERS}/roles`, routeConfig, async (request, reply) => {
    const assigned = await withWireNames(() =>
      assignRole(app.ctx, param(request, "id"), libraryInput(request.body), actorOf(request)),
    );
    reply.code(201);
    return assigned;
  });

  app.delete(`${USERS}/roles/:roleId`, routeConfig, async (request) =>
    unassignRole(app.ctx, param(request, "id"), param(request, "roleId"), actorOf(request)),
  );

  app.get(`${USERS}/entitlements`, routeConfig, async (request) => {
    const { limit, page } = byId(request);
    const rows = await listUserEntitlements(app.ctx, param(request, "id"), page);
    const { items, next_after } = paged(rows, limit, (g) => g.id);
    return { entitlements: items, next_after };
  });

  app.post(`${USERS}/entitlements`, routeConfig, async (request, reply) => {
    const granted = await withWireNames(() =>
      grantEntitlement(app.ctx, param(request, "id"), libraryInput(request.body), actorOf(request)),
    );
    reply.code(201);
    return granted;
  });

  app.delete(`${USERS}/entitlements/:name`, routeConfig, async (request) =>
    revokeEntitlement(app.ctx, param(request, "id"), param(request, "name"), actorOf(request)),
  );
}
