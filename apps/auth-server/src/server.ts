import { DataDirLockedError } from "@tessera/db";
import { build } from "./app.ts";
import { ConfigError, loadConfig } from "./config/index.ts";
import { installLastResortHandlers } from "./http/last-resort.ts";
import { startMetricsServer } from "./http/metrics.ts";

/**
 * Process entry: load config, build, listen, and shut down gracefully on SIGTERM/SIGINT: stop accepting connections,
 * let in-flight requests finish (up to SHUTDOWN_TIMEOUT_MS), close the database, exit 0.
 */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tessera: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  let app: Awaited<ReturnType<typeof build>>;
  try {
    app = await build(config, { startJobs: true });
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      process.stderr.write(`tessera: ${error.message}\n`);
      process.exit(75); // EX_TEMPFAIL
    }
    throw error;
  }

  // A database connection dropping must never end the process (see last-resort.ts for what is swallowed and why).
  installLastResortHandlers(app.log);

  if (config.masterKeySource === "dev-file") {
    app.log.warn(`TESSERA_MASTER_KEY is not set: using a development key stored in ${config.dataDir}/dev-master-key`);
  }

  let closing = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, "shutting down: no new connections, finishing in-flight requests");
    const force = setTimeout(() => {
      app.log.error("shutdown timed out; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    try {
      await app.close();
      app.log.info("shutdown complete");
      process.exit(0);
    } catch (error) {
      app.log.error({ err: error }, "error during shutdown");
      process.exit(1);
    }
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);

  await app.listen({ port: config.port, host: config.host });
  if (config.metrics.port !== undefined) await startMetricsServer(app, config.metrics.port, config.metrics.host);
  app.log.info(`Tessera is listening at ${config.issuer} (database: ${app.database.describe})`);
}

main().catch((error) => {
  process.stderr.write(`tessera: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
