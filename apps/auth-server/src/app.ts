import { randomUUID } from "node:crypto";
import formbody from "@fastify/formbody";
import { createDatabase, type DatabaseHandle } from "@tessera/db";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { Config } from "./config/index.ts";
import type { AppContext } from "./context.ts";
import "./http/context.ts";
import { registerDeadlines } from "./http/deadline.ts";
import {
  frameworkErrorHandler,
  type HtmlErrorRenderer,
  isDatabaseUnavailable,
  registerErrorHandlers,
} from "./http/errors.ts";
import { loggerOptions } from "./http/logger.ts";
import { registerMetrics } from "./http/metrics.ts";
import { registerOpenApi } from "./http/openapi.ts";
import { rateLimitPlugin } from "./http/rate-limit.ts";
import { applySecurityHeaders, registerSecurityHeaders, securityHeaders } from "./http/security-headers.ts";
import { sessionPlugin } from "./http/session.ts";
import { requestLanguage } from "./i18n/index.ts";
import { type Clock, systemClock } from "./libraries/clock.ts";
import { startBackchannelWorker } from "./libraries/jobs/backchannel.ts";
import { startSweeper } from "./libraries/jobs/sweeper.ts";
import { startWebhookWorker } from "./libraries/jobs/webhooks.ts";
import { createMailer, type Mailer } from "./libraries/mailer/index.ts";
import { startOwnersCache } from "./queries/owners-cache.ts";
import { adminAuthorizationRoutes } from "./routes/admin/authorization/index.ts";
import { adminClientRoutes } from "./routes/admin/clients.ts";
import { adminConsoleRoutes } from "./routes/admin/index.ts";
import { adminIpSuspensionRoutes } from "./routes/admin/ip-suspensions.ts";
import { adminProviderRoutes } from "./routes/admin/providers.ts";
import { adminUserRoutes } from "./routes/admin/users.ts";
import { adminWebhookRoutes } from "./routes/admin/webhooks.ts";
import { accountApiRoutes } from "./routes/api/accounts.ts";
import { exportApiRoutes } from "./routes/api/export.ts";
import { guestApiRoutes } from "./routes/api/guest.ts";
import { mfaApiRoutes } from "./routes/api/mfa.ts";
import { passkeyApiRoutes } from "./routes/api/passkeys.ts";
import { billingRoutes } from "./routes/billing/index.ts";
import { discoveryRoutes } from "./routes/discovery.ts";
import { healthRoutes } from "./routes/health.ts";
import { landingRoutes } from "./routes/landing.ts";
import { deviceRoutes } from "./routes/oauth/device.ts";
import { oauthRoutes } from "./routes/oauth/index.ts";
import { pageRoutes } from "./routes/pages/index.ts";

export interface BuildDeps {
  /** An open database; when absent one is created from the config, migrated, and closed with the app. */
  database?: DatabaseHandle;
  clock?: Clock;
  /** A mailer to use instead of the configured one (tests pass an OutboxMailer they can read). */
  mailer?: Mailer;
  /** Where log lines go instead of stdout (tests that read the log). */
  logStream?: { write(line: string): void };
  /** Start the background jobs (the sweeper); server.ts turns this on, tests leave it off and call the jobs directly. */
  startJobs?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Builds the identity provider from a config object. Never listens: `server.ts` does that, tests use `inject()`. */
export async function build(config: Config, deps: BuildDeps = {}): Promise<FastifyInstance> {
  const headers = securityHeaders(config);
  const app = Fastify({
    logger: loggerOptions(config, deps.logStream),
    // Only the configured proxies may set the client IP through X-Forwarded-For.
    trustProxy: config.trustedProxies.length ? config.trustedProxies : false,
    bodyLimit: 64 * 1024,
    genReqId: (req) => {
      const incoming = req.headers["x-request-id"];
      return typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    return503OnClosing: true,
    // A malformed URL is answered here, before any hook: the same security headers as every other response.
    frameworkErrors: (error, request, reply) => {
      applySecurityHeaders(reply, headers);
      frameworkErrorHandler(error, request, reply);
    },
  });

  const ownsDatabase = !deps.database;
  const database =
    deps.database ??
    (await createDatabase({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      maxConnections: config.db.maxConnections,
      connectTimeoutSeconds: config.db.connectTimeoutSeconds,
      statementTimeoutMs: config.db.statementTimeoutMs,
      idleInTransactionTimeoutMs: config.db.idleInTransactionTimeoutMs,
    }));
  const ctx: AppContext = {
    config,
    db: database.db,
    clock: deps.clock ?? systemClock,
    mailer: deps.mailer ?? createMailer(config, app.log),
  };
  app.decorate("ctx", ctx);
  app.decorate("database", database);
  app.decorateRequest("meta", {
    getter(this: FastifyRequest) {
      return { ip: this.ip, userAgent: this.headers["user-agent"], locale: requestLanguage(this) };
    },
  });

  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  registerDeadlines(app);
  app.addHook("onClose", startOwnersCache(ctx.db, database));
  if (ownsDatabase) app.addHook("onClose", async () => database.close());

  let htmlErrors: HtmlErrorRenderer | undefined;
  app.decorate("setHtmlErrorRenderer", (render: HtmlErrorRenderer) => {
    htmlErrors = render;
  });
  registerErrorHandlers(app, () => htmlErrors);
  registerSecurityHeaders(app, config);
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(sessionPlugin);
  // Before any route: @fastify/rate-limit attaches per-route limits when routes are added.
  await app.register(rateLimitPlugin);

  // Before every route: @fastify/swagger collects them as they are added (OpenAPI at /openapi.json, issue #17).
  await registerOpenApi(app);
  await registerMetrics(app);
  await app.register(healthRoutes);
  await app.register(pageRoutes);
  await app.register(accountApiRoutes);
  await app.register(mfaApiRoutes);
  await app.register(passkeyApiRoutes);
  await app.register(exportApiRoutes);
  await app.register(oauthRoutes);
  await app.register(deviceRoutes);
  await app.register(guestApiRoutes);
  await app.register(discoveryRoutes);
  await app.register(adminClientRoutes);
  await app.register(adminIpSuspensionRoutes);
  await app.register(adminProviderRoutes);
  await app.register(adminUserRoutes);
  await app.register(adminConsoleRoutes);
  await app.register(adminAuthorizationRoutes);
  await app.register(billingRoutes);
  await app.register(adminWebhookRoutes);
  await app.register(landingRoutes);

  if (ownsDatabase) await migrateOrRetry(app, database);
  if (deps.startJobs) {
    const sweeper = startSweeper(ctx, app.log);
    app.addHook("onClose", async () => sweeper.stop());
    const stopBackchannel = startBackchannelWorker(ctx, app.log);
    app.addHook("onClose", stopBackchannel);
    app.addHook("onClose", startWebhookWorker(ctx, app.log));
  }
  return app;
}

/**
 * Applies migrations at start. If the database is not reachable yet the server still starts (readyz answers 503) and
 * retries in the background until it can migrate, so a database that comes up late or restarts is not fatal.
 */
async function migrateOrRetry(app: FastifyInstance, database: DatabaseHandle): Promise<void> {
  try {
    await database.migrate();
    return;
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    app.log.warn("database not reachable at start; serving 503 on /readyz and retrying migrations");
  }
  let delayMs = 1000;
  let timer: NodeJS.Timeout | undefined;
  const retry = async () => {
    try {
      await database.migrate();
      app.log.info("database reachable; migrations applied");
    } catch (error) {
      if (!isDatabaseUnavailable(error)) app.log.error({ err: error }, "migration failed");
      delayMs = Math.min(delayMs * 2, 30_000);
      timer = setTimeout(retry, delayMs);
      timer.unref();
    }
  };
  timer = setTimeout(retry, delayMs);
  timer.unref();
  app.addHook("onClose", async () => clearTimeout(timer));
}

declare module "fastify" {
  interface FastifyInstance {
    /** The hosted-pages module installs the HTML error page through this. */
    setHtmlErrorRenderer(render: HtmlErrorRenderer): void;
  }
}
