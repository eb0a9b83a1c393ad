import type { FastifyInstance } from "fastify";
import { catalogAt } from "../../../libraries/authorization/index.ts";
import { adminCatalogRoutes } from "./catalog.ts";
import { adminUserAuthorizationRoutes } from "./users.ts";

/**
 * Roles, permissions and entitlements (#11): the admin API, and the catalog loaded at start (best effort: a database
 * that is not reachable yet only means the first token request loads it).
 */
export async function adminAuthorizationRoutes(app: FastifyInstance): Promise<void> {
  await app.register(adminCatalogRoutes);
  await app.register(adminUserAuthorizationRoutes);
  app.addHook("onReady", async () => {
    await catalogAt(app.ctx.db).catch((error: unknown) => {
      app.log.warn({ err: error }, "authorization catalog not loaded at start; loading at first use");
    });
  });
}
