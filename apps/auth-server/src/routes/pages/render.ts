import type { FastifyReply, FastifyRequest } from "fastify";
import { errorCatalog } from "../../errors/catalog.ts";
import { AppError, type FieldError } from "../../errors/index.ts";
import { csrfToken } from "../../http/csrf.ts";
import { sessionCookieName } from "../../http/session.ts";
import {
  catalogs,
  fromUiLocales,
  type Locale,
  matchMessage,
  negotiateLocale,
  type Params,
  strong,
  type Translator,
  translator,
} from "../../i18n/index.ts";
import type { Continuation } from "../../libraries/accounts/return-to.ts";
import { safeReturnTo } from "../../libraries/accounts/return-to.ts";
import { clientBranding, type PageBranding } from "../../libraries/branding.ts";
import { renderView } from "../../views/index.ts";

/** Shared plumbing of the hosted pages: continuation parameters, client branding, rendering with the layout. */

/**
 * A message a route hands to a page: an English catalog key, or a key with parameters. renderPage translates it into
 * the page's language (a string that is not a key shows as is).
 */
export type Message = string | { key: string; params: Params };

export type Notice = { kind: "ok" | "warn" | "error"; text: Message };

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

export async function brandingFor(request: FastifyRequest, c: Continuation): Promise<PageBranding | null> {
  if (!c.clientId) return null;
  try {
    return await clientBranding(request.server.ctx, c.clientId);
  } catch {
    // Branding is decoration: a page (the error page above all) still renders when the lookup fails.
    return null;
  }
}

export interface PageData {
  title: Message;
  continuation?: Continuation;
  notice?: Notice | undefined;
  wide?: boolean;
  [key: string]: unknown;
}

/** The languages a user can choose on the account page, each named in its own language. */
export const LANGUAGES: { code: Locale; name: string }[] = [
  { code: "en", name: "English" },
  { code: "de", name: "Deutsch" },
  { code: "es", name: "Español" },
];

/** `ui_locales` of the request itself (its query or its form), if it names a supported language. */
function directUiLocales(request: FastifyRequest): string | undefined {
  const query = request.query as Record<string, unknown> | undefined;
  const body = request.body as Record<string, unknown> | undefined;
  const value =
    str(query?.ui_locales, 128) ?? (body && typeof body === "object" ? str(body.ui_locales, 128) : undefined);
  return value && fromUiLocales(value) ? value : undefined;
}

/** `ui_locales` of the request itself, of a form post, or of the pending `/authorize` request it returns to. */
function uiLocalesOf(request: FastifyRequest, continuation: Continuation): string | undefined {
  const direct = directUiLocales(request);
  if (direct) return direct;
  const returnTo = continuation.returnTo;
  const at = returnTo?.indexOf("?") ?? -1;
  if (!returnTo || at < 0) return undefined;
  return str(new URLSearchParams(returnTo.slice(at + 1)).get("ui_locales") ?? undefined, 128);
}

/**
 * The language of a hosted page: the client's `ui_locales` (carried through the interaction in `return_to`), then the
 * signed-in user's saved choice, then `Accept-Language`, then English. The session is looked up only when the browser
 * sends a session cookie, and never for a 5xx page (the database may be what failed).
 */
export async function pageLocale(request: FastifyRequest, continuation: Continuation = {}, status = 200) {
  let saved: string | null | undefined;
  if (status < 500 && request.cookies?.[sessionCookieName(request.server.ctx.config)]) {
    try {
      saved = (await request.currentSession())?.user.locale;
    } catch {
      saved = undefined;
    }
  }
  const accept = request.headers["accept-language"];
  return negotiateLocale({
    uiLocales: uiLocalesOf(request, continuation),
    saved,
    acceptLanguage: typeof accept === "string" ? accept : undefined,
  });
}

/** English error messages of the catalog, so a page shows an error's message in its language by the error's code. */
const CODE_OF_MESSAGE = new Map<string, string>(
  Object.entries(errorCatalog).map(([code, entry]) => [entry.message, code] as [string, string]),
);

/** A route's message in the page's language: a catalog key, else an error's catalog message (by code), else as is. */
export function translate(i18n: Translator, message: Message): string {
  if (typeof message !== "string") return i18n.t(message.key, message.params);
  if (catalogs.en.messages[message] !== undefined) return i18n.t(message);
  const code = CODE_OF_MESSAGE.get(message);
  if (code) return i18n.error(code, message);
  // A catalog message with its values filled in by the code that made it (password rules, device names).
  const filled = matchMessage(message);
  return filled ? i18n.t(filled.key, filled.params) : message;
}

function translateData(i18n: Translator, data: PageData): Record<string, unknown> {
  const tr = (m: unknown) =>
    typeof m === "string" || (m && typeof m === "object" && "key" in m) ? translate(i18n, m as Message) : m;
  const out: Record<string, unknown> = { ...data, title: tr(data.title) };
  if (data.notice) out.notice = { ...data.notice, text: tr(data.notice.text) };
  for (const key of ["heading", "formError", "hrefLabel"]) if (data[key] !== undefined) out[key] = tr(data[key]);
  // The error page: the message of the error's code in the page's language (English keeps the error's own message).
  if (typeof data.message === "string" && typeof data.code === "string") {
    out.message = i18n.error(data.code, data.message);
  }
  if (Array.isArray(data.paragraphs)) out.paragraphs = data.paragraphs.map(tr);
  const action = data.action as { label?: unknown } | undefined;
  if (action && typeof action === "object" && action.label !== undefined)
    out.action = { ...action, label: tr(action.label) };
  if (data.errors && typeof data.errors === "object") {
    out.errors = Object.fromEntries(Object.entries(data.errors as Record<string, unknown>).map(([k, v]) => [k, tr(v)]));
  }
  return out;
}

/** What every page template gets for its language: `t`, `th` (HTML with `strong()` parameters), `date`, `locale`. */
export function i18nData(i18n: Translator) {
  return {
    locale: i18n.locale,
    t: i18n.t,
    th: i18n.html,
    /** A label that may or may not be a catalog key (a scope's description, an activity kind): translated if known. */
    tr: (message: Message) => translate(i18n, message),
    strong,
    date: i18n.date,
    languages: LANGUAGES,
  };
}

/** Renders a page inside the layout with the CSRF token, the client's branding, the continuation and the language. */
export async function renderPage(
  request: FastifyRequest,
  reply: FastifyReply,
  view: string,
  data: PageData,
  status = 200,
): Promise<FastifyReply> {
  const continuation = data.continuation ?? {};
  const i18n = translator(await pageLocale(request, continuation, status));
  const html = renderView(`pages/${view}`, {
    product: request.server.ctx.config.mail.fromName,
    branding: await brandingFor(request, continuation),
    csrf: csrfToken(reply),
    errors: {},
    values: {},
    minLength: request.server.ctx.config.passwords.minLength,
    ...i18nData(i18n),
    // A page opened with ui_locales keeps it in its forms, so the answer to a post is in the same language.
    uiLocales: directUiLocales(request),
    ...translateData(i18n, data),
    continuation,
  });
  return reply
    .code(status)
    .header("cache-control", "no-store")
    .header("content-language", i18n.locale)
    .type("text/html; charset=utf-8")
    .send(html);
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
