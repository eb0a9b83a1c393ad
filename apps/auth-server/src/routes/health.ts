import type { FastifyInstance } from "fastify";
import { AppError } from "../errors/index.ts";
import { PROBE_LOG_LEVEL } from "../http/logger.ts";

/** Liveness (the process answers) and readiness (database reachable and migrated). */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get("/healthz", PROBE_LOG_LEVEL, async () => ({ status: "ok" }));

  app.get("/readyz", PROBE_LOG_LEVEL, async () => {
    const { database } = app;
    try {
      await database.ping();
    } catch {
      throw new AppError("DATABASE_UNAVAILABLE");
    }
    let pending: number;
    try {
      pending = await database.pendingMigrations();
    } catch {
      throw new AppError("DATABASE_UNAVAILABLE");
    }
    if (pending > 0) throw new AppError("MIGRATIONS_PENDING");
    return { status: "ready", database: database.kind };
  });
}
