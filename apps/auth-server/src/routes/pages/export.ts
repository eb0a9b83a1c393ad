import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { type CurrentSession, requireSession } from "../../http/session.ts";
import { totpStatus } from "../../libraries/mfa/factor.ts";
import { exportOwnData } from "../../libraries/privacy/export.ts";
import { parse } from "../../validation.ts";
import { sendExport } from "../api/export.ts";
import { signedInFormRoute } from "./form-route.ts";
import { errorMap, renderPage } from "./render.ts";

const html = { errorFormat: "html" as const };
const exportForm = z.object({
  confirm_password: z.string().max(1024).optional(),
  confirm_code: z.string().trim().max(32).optional(),
});

const SHOWN = new Set([
  "VALIDATION_FAILED",
  "STEP_UP_REQUIRED",
  "INVALID_CREDENTIALS",
  "INVALID_OTP",
  "LOGIN_THROTTLED",
  "ACCOUNT_LOCKED",
  "IP_SUSPENDED",
]);
const shows = (error: unknown): error is AppError => error instanceof AppError && SHOWN.has(error.code);

/**
 * /account/export (#16): a form asking for the password or a code (a sign-in within REAUTH_WINDOW_SECONDS is enough
 * too), whose POST downloads the `tessera.export/1` document as a file.
 */
export async function exportPages(app: FastifyInstance): Promise<void> {
  const post = {
    config: { ...html, rateLimit: routeRateLimit(app.ctx.config, "mfa") },
    preHandler: app.csrfProtection,
  };

  async function view(request: FastifyRequest, reply: FastifyReply, current: CurrentSession, error?: AppError) {
    const errors = error ? errorMap(error) : {};
    return renderPage(
      request,
      reply,
      "export",
      {
        title: "Download your data",
        hasPassword: Boolean(current.user.passwordHash),
        hasTotp: (await totpStatus(app.ctx, current.user.id)).enabled,
        errors,
        formError: error && Object.keys(errors).length === 0 ? error.message : undefined,
      },
      error ? error.status : 200,
    );
  }

  app.get("/account/export", { config: html }, async (request, reply) => {
    const current = await requireSession(request, reply, "/account/export");
    if (!current) return reply;
    return view(request, reply, current);
  });

  app.post(
    "/account/export",
    post,
    signedInFormRoute("/account/export", {
      shows,
      handle: async (request, reply, { body, current }) => {
        const input = parse(exportForm, body);
        const document = await exportOwnData(app.ctx, request.meta, {
          ...current,
          password: input.confirm_password || undefined,
          code: input.confirm_code || undefined,
        });
        return sendExport(reply, document);
      },
      view: (request, reply, { current }, error) => {
        if (error.headers) reply.headers(error.headers);
        return view(request, reply, current, error);
      },
    }),
  );
}
