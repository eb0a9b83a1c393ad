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
]);

export interface ShownError {
  errors: Record<string, string>;
  formError: string;
  status: number;
  headers: Record<string, string> | undefined;
}

export function formErrorOf(error: unknown): ShownError | null {
  if (!(error instanceof AppError) || !FORM_ERRORS.has(error.code)) return null;
  return { errors: errorMap(error), formError: error.message, status: error.status, headers: error.headers };
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
    { ...data, errors: shown.errors, formError: shown.formError },
    shown.status,
  );
}

/** A single string field of a form body (absent, repeated or too long counts as absent). */
export function field(body: unknown, name: string, max = 4096): string | undefined {
  const value = body && typeof body === "object" ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === "string" && value.length <= max ? value : undefined;
}
