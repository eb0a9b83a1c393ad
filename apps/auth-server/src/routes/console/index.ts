import type { FastifyInstance } from "fastify";

/** The admin console at /admin (#14). */
export async function consoleRoutes(_app: FastifyInstance): Promise<void> {}
