import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { FastifyInstance } from "fastify";
import { AppError } from "../errors/index.ts";
import {
  appRegistry,
  enableDefaultMetrics,
  METRICS_CONTENT_TYPE,
  metricsText,
  observeRequest,
} from "../libraries/metrics.ts";

const sha256 = (value: string) => createHash("sha256").update(value).digest();

/**
 * Prometheus metrics: off (no hook, `/metrics` is a 404) unless METRICS_TOKEN or METRICS_PORT is set. With a token,
 * `/metrics` on the main port answers `Authorization: Bearer <token>` only; with a port, `startMetricsServer` serves it
 * there without a token (server.ts). The request hook is one Map lookup and one histogram observation.
 */
export async function registerMetrics(app: FastifyInstance): Promise<void> {
  const { token, port } = app.ctx.config.metrics;
  if (!token && port === undefined) return;
  enableDefaultMetrics();
  const registry = appRegistry(app.ctx, 5000, app.database.pool);
  app.decorate("metricsText", () => metricsText(registry));

  app.addHook("onResponse", (request, reply, done) => {
    observeRequest(
      request.method,
      request.routeOptions.url ?? "(unmatched)",
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  });

  if (!token) return;
  const expected = sha256(token);
  app.get("/metrics", async (request, reply) => {
    const header = request.headers.authorization;
    const presented = header?.startsWith("Bearer ") ? header.slice(7) : undefined;
    if (presented === undefined || !timingSafeEqual(sha256(presented), expected)) {
      reply.header("www-authenticate", 'Bearer realm="metrics"');
      throw new AppError("METRICS_TOKEN_REQUIRED");
    }
    reply.header("content-type", METRICS_CONTENT_TYPE).header("cache-control", "no-store");
    return metricsText(registry);
  });
}

/** A bare HTTP server for `GET /metrics` on METRICS_PORT (no token: bind it where only Prometheus can reach it). */
export function startMetricsServer(app: FastifyInstance, port: number, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    app.metricsText().then(
      (text) => res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" }).end(text),
      (error: unknown) => {
        app.log.error({ err: error }, "metrics collection failed");
        res.writeHead(503, { "content-type": "text/plain" }).end("metrics unavailable\n");
      },
    );
  });
  // Never holds the process open: shutdown ends with the main server (server.ts exits after app.close()).
  server.unref();
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

declare module "fastify" {
  interface FastifyInstance {
    /** The Prometheus exposition text (only when metrics are enabled). */
    metricsText(): Promise<string>;
  }
}
