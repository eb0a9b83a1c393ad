import type { FastifyBaseLogger } from "fastify";

/** postgres.js's own connection-level error codes (src/errors.js), and the SQLSTATEs of a server going away. */
const DRIVER_CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "57P01", // admin_shutdown: the server is stopping
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up or shutting down
]);

/** A stack frame inside the postgres.js package (ESM or CJS build, any package manager layout). */
const DRIVER_FRAME =
  /[\\/]postgres(?:@[^\\/]*)?[\\/](?:node_modules[\\/]postgres[\\/])?(?:cjs[\\/]|cf[\\/])?src[\\/][a-z]+\.js/;

/**
 * True only for an error that postgres.js raised about a connection outside any caller's reach: a connection-class
 * code, or an exception whose top frame is inside the driver (porsager/postgres#1154: the null-socket TypeError from a
 * setImmediate, which patches/postgres@3.4.9.patch fixes; this is the net under that patch).
 */
export function isDriverConnectionError(error: unknown): boolean {
  if (!error || typeof error !== "object") return false;
  const { code, stack } = error as { code?: unknown; stack?: unknown };
  if (typeof code === "string" && (DRIVER_CONNECTION_CODES.has(code) || code.startsWith("08"))) return true;
  if (typeof stack !== "string") return false;
  const topFrame = stack.split("\n").find((line) => line.trimStart().startsWith("at "));
  return topFrame !== undefined && DRIVER_FRAME.test(topFrame);
}

/** What is logged of an error that reached the process: never its enumerable extras (query parameters, rows). */
function describe(error: unknown) {
  if (!(error instanceof Error)) return { type: typeof error };
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    code: typeof code === "string" ? code : undefined,
    message: error.message,
    stack: error.stack,
  };
}

/**
 * The last resort for errors nothing else caught. Swallowed (logged, process keeps serving) only when the error is a
 * database connection error from the driver: it concerns one pooled connection, which postgres.js has already
 * discarded and will reconnect; every query on it was settled with an error (or is withdrawn by its request's
 * deadline), no request state is half-updated in this process (writes are in PostgreSQL transactions, which the
 * server rolls back when the connection dies), so continuing is safe, and exiting would turn a database failover into
 * every instance restarting at once. Anything else means a bug with unknown state: log it and exit 1 (as Node would)
 * so the supervisor restarts a clean process.
 */
export function installLastResortHandlers(log: FastifyBaseLogger, exit: (code: number) => void = process.exit): void {
  process.on("uncaughtException", (error, origin) => {
    if (isDriverConnectionError(error)) {
      log.error({ err: describe(error), origin }, "database driver error outside any request; continuing");
      return;
    }
    log.fatal({ err: describe(error), origin }, "uncaught exception; exiting");
    exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    if (isDriverConnectionError(reason)) {
      log.warn({ err: describe(reason) }, "unhandled database connection error; continuing");
      return;
    }
    log.fatal({ err: describe(reason) }, "unhandled promise rejection; exiting");
    exit(1);
  });
}
