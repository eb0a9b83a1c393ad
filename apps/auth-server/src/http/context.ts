import type { Database, DatabaseHandle } from "@tessera/db";
import type { Config } from "../config/index.ts";
import type { RequestMeta } from "../libraries/audit.ts";
import type { Clock } from "../libraries/clock.ts";
import type { Mailer } from "../libraries/mailer/index.ts";

/**
 * What every route and library needs, built once in `build()`. Areas add their services here (mailer, keys, ...)
 * rather than reaching for globals.
 */
export interface AppContext {
  config: Config;
  db: Database;
  database: DatabaseHandle;
  clock: Clock;
  /** Outbox in development and tests, Mailjet in production (libraries/mailer). */
  mailer: Mailer;
}

/** How a route wants its errors rendered: the JSON catalog shape, an HTML page, or RFC 6749 OAuth JSON. */
export type ErrorFormat = "json" | "html" | "oauth";

declare module "fastify" {
  interface FastifyInstance {
    ctx: AppContext;
  }
  interface FastifyRequest {
    /** Client IP (X-Forwarded-For only through trusted proxies) and user agent, for audit rows. */
    meta: RequestMeta;
  }
  interface FastifyContextConfig {
    errorFormat?: ErrorFormat;
  }
}
