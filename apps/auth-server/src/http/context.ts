import type { DatabaseHandle } from "@tessera/db";
import type { AppContext } from "../context.ts";
import type { RequestMeta } from "../libraries/audit.ts";

/** How a route wants its errors rendered: the JSON catalog shape, an HTML page, or RFC 6749 OAuth JSON. */
export type ErrorFormat = "json" | "html" | "oauth";

declare module "fastify" {
  interface FastifyInstance {
    ctx: AppContext;
    /** The open database: health checks, migrations, close. Libraries get only `ctx.db`. */
    database: DatabaseHandle;
  }
  interface FastifyRequest {
    /** Client IP (X-Forwarded-For only through trusted proxies) and user agent, for audit rows. */
    meta: RequestMeta;
  }
  interface FastifyContextConfig {
    errorFormat?: ErrorFormat;
  }
}
