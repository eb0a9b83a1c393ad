import type { FastifyServerOptions } from "fastify";
import type { Config } from "../config/index.ts";

/**
 * pino options. Query strings are dropped from logged URLs (they carry codes, reset tokens and state); headers that
 * carry credentials and any body field that looks secret are redacted; logged errors leave out the values a failed
 * query carried (`errorForLog`).
 */
export function loggerOptions(config: Config, stream?: { write(line: string): void }): FastifyServerOptions["logger"] {
  return {
    level: config.logLevel,
    ...(stream ? { stream } : config.env === "development" ? { transport: DEV_PRETTY } : {}),
    redact: {
      paths: [
        "req.headers.authorization",
        "req.headers.cookie",
        'req.headers["x-api-key"]',
        'res.headers["set-cookie"]',
        "*.password",
        "*.currentPassword",
        "*.newPassword",
        "*.token",
        "*.refresh_token",
        "*.client_secret",
        "*.code",
        "*.code_verifier",
        "*.secret",
      ],
      censor: "[redacted]",
    },
    serializers: {
      // pino's own err serializer logs every enumerable property (a failed query's `params` among them).
      err: (error) => errorForLog(error) as { type: string; message: string; stack: string },
      req(request) {
        return {
          method: request.method,
          url: String(request.url).split("?")[0],
          remoteAddress: request.ip,
        };
      },
    },
  };
}

/**
 * Human-readable lines in development only (`NODE_ENV` unset or development): pino-pretty runs in pino's worker
 * thread. Production and tests keep one JSON object per line, for log shippers and for tests that parse them.
 */
const DEV_PRETTY = {
  target: "pino-pretty",
  options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname", singleLine: true },
};

/**
 * Route options for probes polled every few seconds (`/healthz`, `/readyz`): their requests are logged at warn and
 * above only, so they do not drown the info log; a failing probe's error is still logged.
 */
export const PROBE_LOG_LEVEL = { logLevel: "warn" } as const;

/** drizzle's "Failed query: <sql>\nparams: <values>" (in the message and in the stack's first line). */
const QUERY_PARAMS = /\nparams: [\s\S]*?(?=\n\s+at |$)/;

/**
 * An error as logged: type, message, code, stack and cause, never its other properties. A failed query's error
 * carries the values it was sent (password hashes, token hashes, email addresses) in `params` and in its message;
 * those become `[redacted]`. A database error of SQLSTATE class 22 (bad data) quotes the value in its message, and
 * `detail` quotes key values, so neither is kept.
 */
export function errorForLog(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  const dataError = typeof code === "string" && /^22[0-9A-Z]{3}$/.test(code);
  const scrub = (text: string) => text.replace(QUERY_PARAMS, "\nparams: [redacted]");
  const out: Record<string, unknown> = {
    type: error.constructor?.name ?? error.name,
    message: dataError ? "[redacted: data exception]" : scrub(error.message),
  };
  if (code !== undefined) out.code = code;
  if (error.stack) out.stack = dataError ? undefined : scrub(error.stack);
  if (error.cause !== undefined && depth < 3) out.cause = errorForLog(error.cause, depth + 1);
  return out;
}
