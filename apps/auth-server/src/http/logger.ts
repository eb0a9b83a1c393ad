import type { FastifyServerOptions } from "fastify";
import type { Config } from "../config/index.ts";

/**
 * pino options. Query strings are dropped from logged URLs (they carry codes, reset tokens and state); headers that
 * carry credentials and any body field that looks secret are redacted.
 */
export function loggerOptions(config: Config, stream?: { write(line: string): void }): FastifyServerOptions["logger"] {
  return {
    level: config.logLevel,
    ...(stream ? { stream } : {}),
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
