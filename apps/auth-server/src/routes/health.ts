import type { FastifyInstance } from "fastify";
import { AppError } from "../errors/index.ts";
import { PROBE_LOG_LEVEL } from "../http/logger.ts";

/** Liveness (the process answers) and readiness (database reachable and migrated). */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get("/healthz", PROBE_LOG_LEVEL, async () => ({ status: "ok" }));

  app.get("/readyz", PROBE_LOG_LEVEL, async (_request, reply) => {
    const { database } = app;
    // The ping is not bound to the request deadline (packages/db), so while the database is unreachable the deadline's
    // backstop answers 503 DATABASE_UNAVAILABLE first; the late failure then has nothing left to answer (thrown, Fastify
    // would log it at error level as "Promise errored, but reply.sent = true was set" on every probe of an outage).
    try {
      await database.ping();
    } catch {
      if (reply.sent) return reply;
      throw new AppError("DATABASE_UNAVAILABLE");
    }
    let pending: number;
    try {
      pending = await database.pendingMigrations();
    } catch {
      if (reply.sent) return reply;
      throw new AppError("DATABASE_UNAVAILABLE");
    }
    if (pending > 0) throw new AppError("MIGRATIONS_PENDING");
    return { status: "ready", database: database.kind };
  });
}
