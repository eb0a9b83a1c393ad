import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { csrfToken } from "../../http/csrf.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { levelAllows } from "../../libraries/admin/levels.ts";
import { renderView } from "../../views/index.ts";
import { errorMap, type Notice } from "../pages/render.ts";
import type { ConsoleAdmin } from "./guard.ts";
import { consoleNav } from "./nav.ts";

export const html = { errorFormat: "html" as const };

/** Route options of every console page: HTML errors and the admin API's rate limit. */
export function pageConfig(app: FastifyInstance) {
  return { config: { ...html, rateLimit: routeRateLimit(app.ctx.config, "admin") } };
}

/** Route options of every console form: as pages, plus the CSRF check (before anything else runs). */
export function formConfig(app: FastifyInstance) {
  return { ...pageConfig(app), preHandler: app.csrfProtection };
}

/** Fixed notices after a redirect (`?notice=`): the text never comes from the URL. */
export const NOTICES: Record<string, Notice> = {
  client_saved: { kind: "ok", text: "The client is saved." },
  public_client_created: {
    kind: "ok",
    text: "The public client is created. It has no secret: its apps sign in with PKCE.",
  },
  client_disabled: { kind: "ok", text: "The client is disabled: its sign-ins and refreshes stop." },
  client_enabled: { kind: "ok", text: "The client is enabled again." },
  sessions_ended: { kind: "ok", text: "Sessions ended: every app of them is signed out." },
  mfa_reset: { kind: "ok", text: "Two-step verification is off for this account." },
  user_disabled: { kind: "ok", text: "The account is disabled and its sessions ended." },
  user_enabled: { kind: "ok", text: "The account is enabled again." },
  reset_sent: { kind: "ok", text: "A password reset email is on its way." },
  user_deleted: { kind: "ok", text: "The account is deleted." },
  level_changed: { kind: "ok", text: "The admin level is changed." },
  ip_lifted: { kind: "ok", text: "The IP suspension is lifted." },
  lock_cleared: { kind: "ok", text: "The account lock is cleared." },
  key_rotated: { kind: "ok", text: "A new signing key is active; the old one stays published for a while." },
  api_key_revoked: { kind: "ok", text: "The API key is revoked." },
  role_created: { kind: "ok", text: "The role is created." },
  role_saved: { kind: "ok", text: "The role is saved." },
  role_deleted: { kind: "ok", text: "The role is deleted, and every assignment of it." },
  permission_created: { kind: "ok", text: "The permission is created." },
  permission_saved: { kind: "ok", text: "The permission is saved." },
  permission_deleted: { kind: "ok", text: "The permission is deleted; roles that had it lost it." },
  role_assigned: { kind: "ok", text: "The role is assigned." },
  role_unassigned: { kind: "ok", text: "The role is taken away." },
  entitlement_granted: { kind: "ok", text: "The entitlement is granted." },
  entitlement_revoked: { kind: "ok", text: "The entitlement is revoked." },
  plan_created: { kind: "ok", text: "The plan is created." },
  plan_saved: { kind: "ok", text: "The plan is saved." },
  plan_archived: { kind: "ok", text: "The plan is archived: no longer on sale; purchases keep their grants." },
  provider_created: { kind: "ok", text: "The provider is created and enabled." },
  provider_saved: { kind: "ok", text: "The provider is saved." },
  provider_disabled: { kind: "ok", text: "The provider is disabled: it signs nobody in; linked identities stay." },
  provider_enabled: { kind: "ok", text: "The provider is enabled again." },
  webhook_saved: { kind: "ok", text: "The webhook is saved." },
  webhook_removed: { kind: "ok", text: "The webhook is removed." },
  webhook_redelivered: { kind: "ok", text: "The delivery is queued again." },
  try_it_needs_uri: { kind: "error", text: "Add the console's callback to the redirect URIs first (below)." },
};

export function noticeFrom(request: FastifyRequest): Notice | undefined {
  const value = (request.query as Record<string, unknown>).notice;
  return typeof value === "string" ? NOTICES[value] : undefined;
}

export interface ConsolePage {
  title: string;
  active: string;
  notice?: Notice | undefined;
  [key: string]: unknown;
}

/** Renders a console view inside the console layout: CSRF token, navigation for the admin's level, no-store. */
export function renderConsole(
  request: FastifyRequest,
  reply: FastifyReply,
  admin: ConsoleAdmin,
  view: string,
  data: ConsolePage,
  status = 200,
): FastifyReply {
  const body = renderView(`console/${view}`, {
    product: request.server.ctx.config.mail.fromName,
    csrf: csrfToken(reply),
    nav: consoleNav.filter((item) => levelAllows(admin.level, item.level)),
    admin: { email: admin.current.user.email, level: admin.level, isAdmin: admin.level === "admin" },
    errors: {},
    values: {},
    ...data,
  });
  return reply.code(status).header("cache-control", "no-store").type("text/html; charset=utf-8").send(body);
}

/** Errors a console form shows on its page (anything else goes to the error page). */
const FORM_ERRORS = new Set([
  "VALIDATION_FAILED",
  "INVALID_REDIRECT_URI",
  "INVALID_OTP",
  "INVALID_CREDENTIALS",
  "STEP_UP_REQUIRED",
  "LOGIN_THROTTLED",
  "ACCOUNT_LOCKED",
  "CONFLICT",
  "NOT_FOUND",
  "SESSION_NOT_FOUND",
  "ACCOUNT_DISABLED",
  "MFA_NOT_ENABLED",
  "CLIENT_NOT_FOUND",
  "USER_NOT_FOUND",
  "ROLE_NOT_FOUND",
  "PERMISSION_NOT_FOUND",
  "ROLE_NAME_TAKEN",
  "PERMISSION_NAME_TAKEN",
  "ROLE_NOT_ASSIGNED",
  "ENTITLEMENT_NOT_GRANTED",
  "PLAN_NOT_FOUND",
  "PLAN_EXISTS",
  "PLAN_ARCHIVED",
  "PAYMENT_PROVIDER_UNAVAILABLE",
  "PAYMENT_PROVIDER_ERROR",
  "PROVIDER_NOT_FOUND",
  "PROVIDER_EXISTS",
  "WEBHOOK_NOT_FOUND",
  "WEBHOOK_DELIVERY_NOT_FOUND",
  "WEBHOOK_DELIVERY_NOT_DEAD",
]);

export interface ShownError {
  errors: Record<string, string>;
  formError: string;
  /** The catalog code (the same one the admin API answers), shown after the message. */
  code?: string | undefined;
  status: number;
  headers: Record<string, string> | undefined;
}

export function formErrorOf(error: unknown): ShownError | null {
  if (!(error instanceof AppError) || !FORM_ERRORS.has(error.code)) return null;
  return {
    errors: errorMap(error),
    formError: error.message,
    code: error.code,
    status: error.status,
    headers: error.headers,
  };
}

/** Renders a console page again with a form error: its status, and its headers (Retry-After on a 429). */
export function renderWithError(
  request: FastifyRequest,
  reply: FastifyReply,
  admin: ConsoleAdmin,
  view: string,
  data: ConsolePage,
  shown: ShownError,
): FastifyReply {
  if (shown.headers) reply.headers(shown.headers);
  return renderConsole(
    request,
    reply,
    admin,
    view,
    { ...data, errors: shown.errors, formError: shown.formError, formErrorCode: shown.code },
    shown.status,
  );
}

/** A single string field of a form body (absent, repeated or too long counts as absent). */
export function field(body: unknown, name: string, max = 4096): string | undefined {
  const value = body && typeof body === "object" ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === "string" && value.length <= max ? value : undefined;
}

/** A list field of a form: one value per line, or separated by spaces or commas (empty parts dropped). */
export function listField(body: unknown, name: string, max = 20_000): string[] {
  return (field(body, name, max) ?? "")
    .split(/[\s,]+/)
    .map((v) => v.trim())
    .filter(Boolean);
}

/** A field that may be repeated (checkboxes): every string value, at most `limit`. */
export function multiField(body: unknown, name: string, limit = 50): string[] {
  const value = body && typeof body === "object" ? (body as Record<string, unknown>)[name] : undefined;
  const values = Array.isArray(value) ? value : [value];
  return values.filter((v): v is string => typeof v === "string" && v.length <= 200).slice(0, limit);
}

/**
 * An expiry from a form: empty is none; a `datetime-local` value (no offset) is read as UTC, as the form says;
 * anything else goes to the library as typed (which refuses it with a field error).
 */
export function expiryField(body: unknown, name = "expires_at"): string | null {
  const raw = field(body, name, 64)?.trim();
  if (!raw) return null;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(raw)) return `${raw}:00Z`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(raw)) return `${raw}Z`;
  return raw;
}

/**
 * A form error for a page with several small forms: the message and each field's problem in one alert (the forms'
 * field names differ from the library's, so the problems are listed rather than placed beside a field).
 */
export function actionErrorOf(error: unknown): ShownError | null {
  const shown = formErrorOf(error);
  if (!shown || !(error instanceof AppError)) return null;
  const problems = (error.fields ?? []).map((f) => `${f.field}: ${f.message}`);
  return {
    ...shown,
    errors: {},
    formError: problems.length ? `${shown.formError} ${problems.join("; ")}.` : shown.formError,
  };
}
