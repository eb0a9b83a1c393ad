import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError, type FieldError } from "../../errors/index.ts";
import { csrfToken } from "../../http/csrf.ts";
import type { Continuation } from "../../libraries/accounts/return-to.ts";
import { safeReturnTo } from "../../libraries/accounts/return-to.ts";
import { type ClientBranding, clientBranding } from "../../libraries/branding.ts";
import { renderView } from "../../views/index.ts";

/** Shared plumbing of the hosted pages: continuation parameters, client branding, rendering with the layout. */

export type Notice = { kind: "ok" | "warn" | "error"; text: string };

/** A single string from a query or form value (repeated parameters and non-strings count as absent). */
export function str(value: unknown, max = 4096): string | undefined {
  return typeof value === "string" && value.length > 0 && value.length <= max ? value : undefined;
}

const CLIENT_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Reads `return_to` and `client_id` from a query or form body. Only a same-origin relative `return_to` is kept. When
 * `client_id` is absent but `return_to` is a pending `/authorize` request, its `client_id` is used for branding.
 */
export function continuationFrom(source: unknown): Continuation {
  const record = source && typeof source === "object" ? (source as Record<string, unknown>) : {};
  const rawReturn = str(record.return_to);
  const returnTo = rawReturn && safeReturnTo(rawReturn, "") ? rawReturn : undefined;
  let clientId = str(record.client_id, 200);
  if (!clientId && returnTo?.startsWith("/authorize?")) {
    clientId = new URLSearchParams(returnTo.slice("/authorize?".length)).get("client_id") ?? undefined;
  }
  return { returnTo, clientId: clientId && CLIENT_ID.test(clientId) ? clientId : undefined };
}

/** A URL on Tessera carrying the continuation, e.g. the "Create an account" link of the sign-in page. */
export function withContinuation(path: string, c: Continuation, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  if (c.returnTo) params.set("return_to", c.returnTo);
  if (c.clientId) params.set("client_id", c.clientId);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}

/** Where to go after a successful sign-in or registration. */
export function destination(c: Continuation): string {
  return safeReturnTo(c.returnTo);
}

export async function brandingFor(request: FastifyRequest, c: Continuation): Promise<ClientBranding | null> {
  if (!c.clientId) return null;
  try {
    return await clientBranding(request.server.ctx, c.clientId);
  } catch {
    // Branding is decoration: a page (the error page above all) still renders when the lookup fails.
    return null;
  }
}

export interface PageData {
  title: string;
  continuation?: Continuation;
  notice?: Notice | undefined;
  wide?: boolean;
  [key: string]: unknown;
}

/** Renders a page inside the layout with the CSRF token, the client's branding and the continuation. */
export async function renderPage(
  request: FastifyRequest,
  reply: FastifyReply,
  view: string,
  data: PageData,
  status = 200,
): Promise<FastifyReply> {
  const continuation = data.continuation ?? {};
  const html = renderView(`pages/${view}`, {
    product: request.server.ctx.config.mail.fromName,
    branding: await brandingFor(request, continuation),
    csrf: csrfToken(reply),
    errors: {},
    values: {},
    minLength: request.server.ctx.config.passwords.minLength,
    ...data,
    continuation,
  });
  return reply.code(status).header("cache-control", "no-store").type("text/html; charset=utf-8").send(html);
}

/** Field errors of an AppError as a `{ field: message }` map (first message per field). */
export function errorMap(error: AppError): Record<string, string> {
  const map: Record<string, string> = {};
  for (const f of error.fields ?? ([] as FieldError[])) {
    const key = f.field.split(".")[0] ?? f.field;
    map[key] ??= f.message;
  }
  return map;
}

/** Errors a form shows next to its fields (anything else propagates to the error page). */
export function isFormError(error: unknown): error is AppError {
  return (
    error instanceof AppError &&
    [
      "VALIDATION_FAILED",
      "WEAK_PASSWORD",
      "INVALID_CREDENTIALS",
      "CONFLICT",
      "EMAIL_NOT_VERIFIED",
      "ACCOUNT_DISABLED",
      "TERMS_NOT_ACCEPTED",
    ].includes(error.code)
  );
}

/** 303 See Other: the redirect after a POST (the browser follows with GET). */
export function seeOther(reply: FastifyReply, location: string): FastifyReply {
  return reply.code(303).header("location", location).header("cache-control", "no-store").send();
}

export const HEADINGS: Partial<Record<string, string>> = {
  NOT_FOUND: "Page not found",
  CSRF_INVALID: "Please try again",
  INVALID_TOKEN: "This link does not work",
  RATE_LIMITED: "Too many attempts",
  IP_SUSPENDED: "Too many attempts",
  LOGIN_THROTTLED: "Too many attempts",
  ACCOUNT_LOCKED: "Sign-in paused",
  UNAUTHENTICATED: "Sign in to continue",
  INTERNAL_ERROR: "Something went wrong",
  // OAuth requests that cannot redirect back (unknown client, unregistered redirect URI, bad id_token_hint).
  invalid_request: "This sign-in request cannot continue",
  invalid_client: "This sign-in request cannot continue",
  unauthorized_client: "This sign-in request cannot continue",
};

/** The HTML error page installed through `app.setHtmlErrorRenderer()`. */
export async function renderErrorPage(request: FastifyRequest, reply: FastifyReply, error: AppError) {
  const status = error.status;
  return renderPage(
    request,
    reply,
    "error",
    {
      title: HEADINGS[error.code] ?? "Something is not right",
      heading: HEADINGS[error.code] ?? "Something is not right",
      message: error.message,
      code: error.code,
      requestId: request.id,
      // A reset link ends a lock from failed sign-ins, so a locked-out owner is pointed there.
      href:
        error.code === "INVALID_TOKEN" ? "/login" : error.code === "ACCOUNT_LOCKED" ? "/forgot-password" : "/account",
      hrefLabel:
        error.code === "INVALID_TOKEN"
          ? "Go to sign in"
          : error.code === "ACCOUNT_LOCKED"
            ? "Reset your password"
            : "Go to your account",
    },
    status,
  );
}
