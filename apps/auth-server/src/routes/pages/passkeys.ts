import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { type CurrentSession, requireSession } from "../../http/session.ts";
import { hasConfirmedTotp } from "../../libraries/mfa/factor.ts";
import { passkeysOf, removePasskeyChecked, renamePasskeyChecked } from "../../libraries/passkeys/manage.ts";
import { passkeySchemas } from "../../libraries/passkeys/schemas.ts";
import { parse } from "../../validation.ts";
import { signedInFormRoute } from "./form-route.ts";
import { mfaCookie } from "./mfa-cookie.ts";
import { continuationFrom, errorMap, type Notice, renderPage, seeOther, str, withContinuation } from "./render.ts";

const html = { errorFormat: "html" as const };

const NOTICES: Record<string, Notice> = {
  added: { kind: "ok", text: "Your passkey was added." },
  renamed: { kind: "ok", text: "Your passkey was renamed." },
  removed: { kind: "ok", text: "Your passkey was removed." },
};

/** Errors shown on the passkey forms (anything else goes to the error page). */
const FORM_ERRORS = new Set([
  "VALIDATION_FAILED",
  "INVALID_CREDENTIALS",
  "INVALID_OTP",
  "LOGIN_THROTTLED",
  "IP_SUSPENDED",
  "ACCOUNT_LOCKED",
  "PASSKEY_NOT_FOUND",
]);
const isFormError = (error: unknown): error is AppError => error instanceof AppError && FORM_ERRORS.has(error.code);

/**
 * Passkeys on the hosted pages: GET /account/passkeys (the list, adding one through public/passkeys.js, renaming and
 * removing with plain forms that work without JavaScript, each after a fresh password or code) and GET /login/passkey
 * (the passkey as the second step after a right password). The ceremonies themselves are routes/api/passkeys.ts.
 */
export async function passkeyPages(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;
  const post = { config: { ...html, rateLimit: routeRateLimit(config, "mfa") }, preHandler: app.csrfProtection };

  async function renderManage(
    request: FastifyRequest,
    reply: FastifyReply,
    current: CurrentSession,
    extra: { notice?: Notice | undefined; form?: string; error?: AppError } = {},
  ) {
    const errors = extra.error ? errorMap(extra.error) : {};
    if (extra.error?.headers) reply.headers(extra.error.headers);
    return renderPage(
      request,
      reply,
      "passkeys",
      {
        title: "Passkeys",
        passkeys: await passkeysOf(app.ctx, current.user.id),
        hasTotp: await hasConfirmedTotp(app.ctx.db, current.user.id),
        notice: extra.notice,
        form: extra.form,
        errors,
        formError: extra.error && Object.keys(errors).length === 0 ? extra.error.message : undefined,
      },
      extra.error ? extra.error.status : 200,
    );
  }

  app.get("/account/passkeys", { config: html }, async (request, reply) => {
    const current = await requireSession(request, reply, "/account/passkeys");
    if (!current) return reply;
    const notice = NOTICES[str((request.query as Record<string, unknown>).notice, 40) ?? ""];
    return renderManage(request, reply, current, { notice });
  });

  app.post(
    "/account/passkeys/:id/rename",
    post,
    signedInFormRoute("/account/passkeys", {
      shows: isFormError,
      handle: async (request, reply, { body, current }) => {
        const { id } = parse(passkeySchemas.id, request.params);
        const input = parse(passkeySchemas.rename, body);
        await renamePasskeyChecked(app.ctx, request.meta, { user: current.user, id, ...input });
        return seeOther(reply, "/account/passkeys?notice=renamed");
      },
      view: (request, reply, { current }, error) =>
        renderManage(request, reply, current, { form: `rename-${(request.params as { id: string }).id}`, error }),
    }),
  );

  app.post(
    "/account/passkeys/:id/remove",
    post,
    signedInFormRoute("/account/passkeys", {
      shows: isFormError,
      handle: async (request, reply, { body, current }) => {
        const { id } = parse(passkeySchemas.id, request.params);
        const input = parse(passkeySchemas.remove, body);
        await removePasskeyChecked(app.ctx, request.meta, { user: current.user, id, ...input });
        return seeOther(reply, "/account/passkeys?notice=removed");
      },
      view: (request, reply, { current }, error) =>
        renderManage(request, reply, current, { form: `remove-${(request.params as { id: string }).id}`, error }),
    }),
  );

  app.get("/login/passkey", { config: html }, async (request, reply) => {
    const continuation = continuationFrom(request.query);
    const links = {
      login: withContinuation("/login", continuation),
      otp: withContinuation("/login/otp", continuation),
    };
    if (!mfaCookie(request, config)) return seeOther(reply, links.login);
    return renderPage(request, reply, "passkeys-step", { title: "Use your passkey", continuation, links });
  });
}
