import { type ErrorCode, errorCatalog } from "./catalog.ts";

export interface FieldError {
  /** The input field, as named in the request (e.g. `email`). */
  field: string;
  message: string;
}

/**
 * An error meant for the client: a stable catalog code, a human message, and optional per-field details. Each wire
 * format has one sender in http/errors.ts (catalog JSON, OAuth JSON, the HTML error page).
 */
export class AppError extends Error {
  override name = "AppError";
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly fields?: FieldError[],
    /** Extra headers for the response (e.g. Retry-After). */
    readonly headers?: Record<string, string>,
    /** Overrides the catalog's status (an OAuth error answered with another status than its default). */
    status?: number,
  ) {
    super(message ?? errorCatalog[code].message);
    this.status = status ?? errorCatalog[code].status;
  }
}

/** The one JSON shape every non-OAuth endpoint answers errors with. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; status: number; fields?: FieldError[]; requestId?: string };
}

export function errorBody(error: AppError, requestId?: string): ErrorBody {
  return {
    error: {
      code: error.code,
      message: error.message,
      status: error.status,
      ...(error.fields?.length ? { fields: error.fields } : {}),
      ...(requestId ? { requestId } : {}),
    },
  };
}
