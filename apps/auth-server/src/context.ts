import type { Database } from "@tessera/db";
import type { Config } from "./config/index.ts";
import type { Clock } from "./libraries/clock.ts";
import type { Mailer } from "./libraries/mailer/types.ts";

/**
 * The one application context: what every library needs, built once in `build()` (or by the CLI) and passed down.
 * Framework-free on purpose: `libraries/` and `queries/` never import Fastify, so the same rules run under the HTTP
 * server, the CLI and the tests. The database handle (health, migrations, close) is not here; it belongs to whoever
 * opened the database (`app.database` on the server).
 */
export interface AppContext {
  config: Config;
  db: Database;
  clock: Clock;
  /** Outbox in development and tests, Mailjet in production (libraries/mailer). */
  mailer: Mailer;
}

/** The part of the context that rules without email need; any `AppContext` is one. */
export type CoreContext = Pick<AppContext, "config" | "db" | "clock">;

/**
 * The few logging calls libraries make. Pino's (and so Fastify's request) logger satisfies it; so does `quietLogger`.
 * Objects first, message second, as pino reads them.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  debug(msg: string): void;
  info(obj: object, msg?: string): void;
  info(msg: string): void;
  warn(obj: object, msg?: string): void;
  warn(msg: string): void;
  error(obj: object, msg?: string): void;
  error(msg: string): void;
}

/** Discards every line: for callers without a logger (the CLI's quiet paths, unit tests). */
export const quietLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
