import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, OAuthError } from "../../errors/index.ts";
import { noStore } from "../../http/errors.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import type { CurrentSession } from "../../http/session.ts";
import { recordTermsAcceptance, termsAcceptanceNeeded } from "../../libraries/accounts/terms.ts";
import { authenticateOAuthClient, checkGrantAllowed } from "../../libraries/oauth/client-auth.ts";
import {
  DEVICE_CODE_GRANT,
  DEVICE_PAGE,
  decideUserCode,
  lookUpUserCode,
  startDeviceAuthorization,
} from "../../libraries/oauth/device.ts";
import { DEVICE_AUTHORIZATION_PARAMS } from "../../libraries/oauth/form-params.ts";
import { readParams } from "../../libraries/oauth/params.ts";
import { errorMap, renderPage, seeOther, str } from "../pages/render.ts";
import { clientCredentials, failureLog, methodNotAllowed, requireForm } from "./http.ts";

/**
 * RFC 8628: POST /device_authorization (client-authenticated, OAuth JSON errors) and the hosted verification page
 * /device, where a signed-in user enters the code (or arrives with it from `verification_uri_complete`, prefilled),
 * sees the app's name and the scopes, and approves or denies. Looking a code up is a POST (CSRF-protected, rate
 * limited per IP, and each wrong code counted by the sign-in throttle), so the page never answers guesses on GET.
 */
export async function deviceRoutes(app: FastifyInstance): Promise<void> {
  const { ctx } = app;

  app.post(
    "/device_authorization",
    { config: { errorFormat: "oauth", rateLimit: routeRateLimit(ctx.config, "device_authorization") } },
    async (request, reply) => {
      requireForm(request);
      const p = readParams(request.body, DEVICE_AUTHORIZATION_PARAMS);
      const client = await authenticateOAuthClient(
        ctx,
        clientCredentials(request, request.body),
        request.meta,
        failureLog(request),
      );
      checkGrantAllowed(client, DEVICE_CODE_GRANT);
      return noStore(reply).send(await startDeviceAuthorization(ctx, client, p.scope));
    },
  );
  methodNotAllowed(app, "/device_authorization", ["POST"]);

  /** The signed-in user, or a redirect to the sign-in page that comes back here (with the code, if any). */
  async function signedIn(request: FastifyRequest, reply: FastifyReply, userCode: string | undefined) {
    const current = await request.currentSession();
    if (current) return current;
    const back = userCode ? `${DEVICE_PAGE}?user_code=${encodeURIComponent(userCode)}` : DEVICE_PAGE;
    const location = `/login?return_to=${encodeURIComponent(back)}`;
    if (request.method === "GET") reply.redirect(location, 302);
    else seeOther(reply, location);
    return null;
  }

  function renderEntry(
    request: FastifyRequest,
    reply: FastifyReply,
    current: CurrentSession,
    userCode: string | undefined,
    error?: AppError,
  ) {
    return renderPage(
      request,
      reply,
      "device",
      {
        title: "Connect a device",
        email: current.user.email,
        values: { user_code: userCode ?? "" },
        errors: error ? { user_code: error.message } : {},
      },
      error ? error.status : 200,
    );
  }

  /** The confirmation page; with the terms box when the user has not accepted the configured versions. */
  async function renderConfirm(
    request: FastifyRequest,
    reply: FastifyReply,
    current: CurrentSession,
    found: { userCode: string; clientName: string; scopes: string[] },
    error?: AppError,
  ) {
    const terms = await termsAcceptanceNeeded(ctx.db, ctx.config, current.user.id);
    return renderPage(
      request,
      reply,
      "device-confirm",
      {
        title: "Connect a device",
        email: current.user.email,
        userCode: found.userCode,
        clientName: found.clientName,
        scopes: found.scopes,
        ...(terms ? { documents: ctx.config.privacy } : {}),
        errors: error ? errorMap(error) : {},
      },
      error ? error.status : 200,
    );
  }

  app.get(DEVICE_PAGE, { config: { errorFormat: "html" } }, async (request, reply) => {
    const userCode = str((request.query as Record<string, unknown>).user_code, 64);
    const current = await signedIn(request, reply, userCode);
    if (!current) return reply;
    return renderEntry(request, reply, current, userCode);
  });

  app.post(
    DEVICE_PAGE,
    {
      config: { errorFormat: "html", rateLimit: routeRateLimit(ctx.config, "device") },
      preHandler: app.csrfProtection,
    },
    async (request, reply) => {
      const userCode = str((request.body as Record<string, unknown> | undefined)?.user_code, 64);
      const current = await signedIn(request, reply, userCode);
      if (!current) return reply;
      try {
        const found = await lookUpUserCode(ctx, userCode, current.user, request.meta);
        return renderConfirm(request, reply, current, found);
      } catch (error) {
        if (error instanceof AppError && error.code === "USER_CODE_INVALID") {
          return renderEntry(request, reply, current, userCode, error);
        }
        throw error;
      }
    },
  );

  app.post(
    `${DEVICE_PAGE}/decision`,
    {
      config: { errorFormat: "html", rateLimit: routeRateLimit(ctx.config, "device") },
      preHandler: app.csrfProtection,
    },
    async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const userCode = str(body.user_code, 64);
      const decision = str(body.decision, 16);
      if (decision !== "approve" && decision !== "deny")
        throw new OAuthError("invalid_request", "Choose Allow or Deny.");
      const current = await signedIn(request, reply, userCode);
      if (!current) return reply;
      try {
        // Newer terms (#16): approving a device is a sign-in to that app, so it needs them accepted, as /authorize
        // does (there through the interstitial; here by the box on the confirmation page). Denying needs nothing.
        if (decision === "approve" && (await termsAcceptanceNeeded(ctx.db, ctx.config, current.user.id))) {
          if (str(body.acceptTerms, 8) !== "on") {
            const found = await lookUpUserCode(ctx, userCode, current.user, request.meta);
            const refused = new AppError("TERMS_NOT_ACCEPTED", undefined, [
              { field: "acceptTerms", message: "Accept the terms of service and the privacy notice to continue." },
            ]);
            return renderConfirm(request, reply, current, found, refused);
          }
          await recordTermsAcceptance(ctx.db, ctx.config, {
            userId: current.user.id,
            context: "sign_in",
            now: ctx.clock.now(),
          });
        }
        const found = await decideUserCode(ctx, userCode, decision, current, request.meta);
        const approved = decision === "approve";
        return renderPage(request, reply, "message", {
          title: "Connect a device",
          heading: approved ? "Device connected" : "Request denied",
          paragraphs: [
            {
              key: approved
                ? "{app} is now signed in on your device. You can close this page."
                : "{app} was not allowed to sign in. You can close this page.",
              params: { app: found.clientName },
            },
          ],
        });
      } catch (error) {
        if (error instanceof AppError && error.code === "USER_CODE_INVALID") {
          return renderEntry(request, reply, current, userCode, error);
        }
        throw error;
      }
    },
  );
}
