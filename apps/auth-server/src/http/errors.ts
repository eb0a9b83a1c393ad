import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, type ErrorCode, errorBody, type OAuthError, OAuthPageError, toOAuthError } from "../errors/index.ts";
import type { ErrorFormat } from "./context.ts";

/** Renders an error as an HTML page; replaced by the hosted-pages module with the real layout. */
export type HtmlErrorRenderer = (
  request: FastifyRequest,
  reply: FastifyReply,
  error: AppError,
) => FastifyReply | Promise<FastifyReply>;

const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P03",
  // The request's deadline passed while its statement waited for the database (packages/db/src/deadline.ts), or
  // the deadline-bounded statement_timeout cancelled it.
  "DB_DEADLINE_EXCEEDED",
  "57014",
]);

/** True for errors that mean "the database is not reachable right now" rather than a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (
    let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    const code = typeof e.code === "string" ? e.code : undefined;
    if (code && (CONNECTION_ERROR_CODES.has(code) || code.startsWith("08"))) return true;
  }
  return false;
}

/** Framework error codes and the catalog code each one is answered with. */
const FRAMEWORK_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_BODY_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "MALFORMED_BODY",
  FST_ERR_CTP_EMPTY_JSON_BODY: "MALFORMED_BODY",
  FST_ERR_CTP_INVALID_JSON_BODY: "MALFORMED_BODY",
  FST_ERR_VALIDATION: "VALIDATION_FAILED",
  FST_ERR_BAD_URL: "NOT_FOUND",
  FST_ERR_ASYNC_CONSTRAINT: "NOT_FOUND",
  FST_ERR_MAX_PARAM_LENGTH: "NOT_FOUND",
  // @fastify/csrf-protection (double-submit cookie on the hosted forms).
  FST_CSRF_MISSING_SECRET: "CSRF_INVALID",
  FST_CSRF_INVALID_TOKEN: "CSRF_INVALID",
};

/**
 * Maps anything thrown to a catalog error (OAuth errors are catalog errors too): framework errors by their code,
 * unknown errors to INTERNAL_ERROR.
 */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const fe = error as Partial<FastifyError>;
  const known = fe.code && Object.hasOwn(FRAMEWORK_CODES, fe.code) ? FRAMEWORK_CODES[fe.code] : undefined;
  if (known) return new AppError(known);
  if (fe.validation) return new AppError("VALIDATION_FAILED");
  if (fe.statusCode === 429) return new AppError("RATE_LIMITED");
  if (isDatabaseUnavailable(error)) return new AppError("DATABASE_UNAVAILABLE");
  // JSON.parse failures inside content-type parsers, bad percent-encoding and the like.
  if (fe.statusCode === 400 || error instanceof SyntaxError) return new AppError("MALFORMED_BODY");
  if (fe.statusCode === 413) return new AppError("PAYLOAD_TOO_LARGE");
  if (fe.statusCode === 415) return new AppError("UNSUPPORTED_MEDIA_TYPE");
  return new AppError("INTERNAL_ERROR");
}

/**
 * Fastify's `frameworkErrors` option: errors raised while routing (undecodable URL, a path parameter longer than
 * maxParamLength, a failed constraint) happen before any route, so the error handler never sees them. Without this
 * they are answered in Fastify's own shape; with it, in the catalog shape like everything else.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  sendJsonError(request, reply, toAppError(error));
}

/** OAuth responses carrying tokens or errors must never be cached (RFC 6749 5.1). */
export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header("cache-control", "no-store").header("pragma", "no-cache");
}

/** The catalog JSON sender: `{ error: { code, message, status, fields?, requestId } }`. */
export function sendJsonError(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  reply.code(error.status);
  if (error.headers) reply.headers(error.headers);
  return reply.send(errorBody(error, request.id));
}

/**
 * The OAuth JSON sender (RFC 6749 5.2): `{ error, error_description }`, plus `tessera_code` for outcomes a client
 * must tell apart, never cached.
 */
export function sendOAuthError(reply: FastifyReply, error: OAuthError): FastifyReply {
  return noStore(reply)
    .code(error.status)
    .headers(error.headers)
    .send({
      ...error.extensions,
      error: error.error,
      error_description: error.description,
      ...(error.tesseraCode ? { tessera_code: error.tesseraCode } : {}),
    });
}

/**
 * Installs the app's error and not-found handlers. Each error is answered by the sender of the route's `errorFormat`
 * (catalog JSON by default, OAuth JSON, or the one HTML error page that the hosted-pages module installs); an
 * OAuthPageError is always a page.
 */
export function registerErrorHandlers(app: FastifyInstance, renderHtml: () => HtmlErrorRenderer | undefined): void {
  app.setErrorHandler(async (error, request, reply) => {
    const appError = toAppError(error);
    if (appError.code === "INTERNAL_ERROR") request.log.error({ err: error }, "unhandled error");
    else if (appError.code === "DATABASE_UNAVAILABLE")
      request.log.warn({ err: { message: (error as Error).message } }, "database unavailable");
    return sendError(request, reply, appError);
  });

  app.setNotFoundHandler(async (request, reply) => sendError(request, reply, new AppError("NOT_FOUND")));

  function sendError(request: FastifyRequest, reply: FastifyReply, error: AppError) {
    const format: ErrorFormat =
      error instanceof OAuthPageError ? "html" : (request.routeOptions.config?.errorFormat ?? "json");
    if (format === "html") {
      const render = renderHtml();
      if (render) {
        reply.code(error.status);
        if (error.headers) reply.headers(error.headers);
        return render(request, reply, error);
      }
    }
    if (format === "oauth") return sendOAuthError(reply, toOAuthError(error));
    return sendJsonError(request, reply, error);
  }
}
