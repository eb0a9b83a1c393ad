import type { FastifyInstance } from "fastify";
import { consoleRoutes } from "../console/index.ts";
import { adminApiKeyRoutes } from "./api-keys.ts";
import { adminAuditRoutes } from "./audit-events.ts";
import { adminSecurityRoutes } from "./security.ts";
import { adminUserActionRoutes } from "./user-actions.ts";

/**
 * The admin areas of issue #14: admin API routes for the audit log, API keys, security and user actions, and the
 * console at /admin. Each is its own encapsulated plugin (its own preParsing auth hook). Other areas add their admin
 * routes with their own plugin here, one line each.
 */
export async function adminConsoleRoutes(app: FastifyInstance): Promise<void> {
  await app.register(adminAuditRoutes);
  await app.register(adminApiKeyRoutes);
  await app.register(adminSecurityRoutes);
  await app.register(adminUserActionRoutes);
  await app.register(consoleRoutes);
}
