import type { FastifyInstance } from "fastify";
import { auditPages } from "./audit.ts";
import { clientPages } from "./clients.ts";
import { overviewPage } from "./overview.ts";
import { planPages } from "./plans.ts";
import { providerPages } from "./providers.ts";
import { rolePages } from "./roles.ts";
import { securityPages } from "./security.ts";
import { tryItPages } from "./try-it.ts";
import { userPages } from "./users.ts";
import { webhookPages } from "./webhooks.ts";

/**
 * The admin console at /admin (#14): server-rendered pages over the same library functions as the admin API, with
 * the hosted pages' template engine, CSP, CSRF (`_csrf` on every form, checked before the handler) and escaping.
 * Access (admin level, two-step verification, a session signed in with a code) is checked on every route by
 * `consoleAccess` (guard.ts). Other areas add pages with their own plugin and an entry in nav.ts.
 */
export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  await app.register(overviewPage);
  await app.register(clientPages);
  await app.register(userPages);
  await app.register(auditPages);
  await app.register(securityPages);
  await app.register(rolePages);
  await app.register(planPages);
  await app.register(providerPages);
  await app.register(webhookPages);
  await app.register(tryItPages);
}
