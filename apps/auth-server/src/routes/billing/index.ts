import type { FastifyInstance } from "fastify";
import { adminPlanRoutes } from "./admin-plans.ts";
import { billingPages } from "./pages.ts";
import { webhookRoutes } from "./webhooks.ts";

/** Payments (#12): checkout and billing pages, provider webhooks, and the admin API for plans. */
export async function billingRoutes(app: FastifyInstance): Promise<void> {
  await app.register(billingPages);
  await app.register(webhookRoutes);
  await app.register(adminPlanRoutes);
}
