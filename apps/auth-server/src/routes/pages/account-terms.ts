import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AppError } from "../../errors/index.ts";
import { type CurrentSession, requireSession } from "../../http/session.ts";
import { recordTermsAcceptance, termsAcceptanceNeeded, termsConfigured } from "../../libraries/accounts/terms.ts";
import { errorMap, renderPage, seeOther } from "./render.ts";

const html = { errorFormat: "html" as const };

/**
 * Account pages a user who has not accepted the current terms may still use (GDPR): the terms box itself, the data
 * export and the account deletion. Declining is signing out (the box's second form posts to /logout).
 */
const UNGATED = new Set(["/account/terms", "/account/export", "/account/delete"]);

/** Where to return after accepting: an account page path (never another origin), else /account. */
function accountPath(value: unknown): string {
  return typeof value === "string" && /^\/account(\/[A-Za-z0-9/_-]*)?$/.test(value) && value.length <= 100
    ? value
    : "/account";
}

/**
 * The account pages' terms gate (#16), a preHandler for every /account route: a signed-in user whose latest
 * acceptance is older than the configured terms/privacy versions is sent (303) to /account/terms before any account
 * page shows or any account form acts (a form post changes nothing and goes to the box too). The export and the
 * deletion stay reachable. Runs before the route's own CSRF check, so a post refused here does nothing at all.
 */
export function accountTermsGate(app: FastifyInstance) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const route = request.routeOptions.url ?? "";
    if (!(route === "/account" || route.startsWith("/account/")) || UNGATED.has(route)) return undefined;
    if (!termsConfigured(app.ctx.config)) return undefined;
    const current = await request.currentSession();
    if (!current || !(await termsAcceptanceNeeded(app.ctx.db, app.ctx.config, current.user.id))) return undefined;
    const back = request.method === "GET" ? accountPath(request.url.split("?")[0]) : "/account";
    return seeOther(reply, `/account/terms?return_to=${encodeURIComponent(back)}`);
  };
}

/**
 * The box: accept (POST /account/terms), decline (sign out), or still export or delete. `error`: a refused deletion
 * (wrong password), shown at its field.
 */
export function sendAccountTermsPage(
  request: FastifyRequest,
  reply: FastifyReply,
  current: CurrentSession,
  returnTo = "/account",
  error?: AppError,
) {
  const errors = error ? errorMap(error) : {};
  return renderPage(
    request,
    reply,
    "terms-accept",
    {
      title: "Updated terms",
      account: true,
      action: "/account/terms",
      email: current.user.email,
      documents: request.server.ctx.config.privacy,
      params: [["return_to", returnTo]],
      errors: { currentPassword: errors.currentPassword ?? (error ? error.message : undefined) },
    },
    error?.status ?? 200,
  );
}

/** GET/POST /account/terms: the same box as the /authorize interstitial, for Tessera's own account pages. */
export async function accountTermsPages(app: FastifyInstance): Promise<void> {
  app.get("/account/terms", { config: html }, async (request, reply) => {
    const returnTo = accountPath((request.query as Record<string, unknown>).return_to);
    const current = await requireSession(request, reply, `/account/terms?return_to=${encodeURIComponent(returnTo)}`);
    if (!current) return reply;
    if (!(await termsAcceptanceNeeded(app.ctx.db, app.ctx.config, current.user.id))) return seeOther(reply, returnTo);
    return sendAccountTermsPage(request, reply, current, returnTo);
  });

  // Accepting records the configured versions (context sign_in, as the interstitial) and returns to the page asked for.
  app.post("/account/terms", { config: html, preHandler: app.csrfProtection }, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const returnTo = accountPath(body.return_to);
    const current = await requireSession(request, reply, `/account/terms?return_to=${encodeURIComponent(returnTo)}`);
    if (!current) return reply;
    if (body.decision !== "accept") return seeOther(reply, `/account/terms?return_to=${encodeURIComponent(returnTo)}`);
    if (await termsAcceptanceNeeded(app.ctx.db, app.ctx.config, current.user.id)) {
      await recordTermsAcceptance(app.ctx.db, app.ctx.config, {
        userId: current.user.id,
        context: "sign_in",
        now: app.ctx.clock.now(),
      });
    }
    return seeOther(reply, returnTo);
  });
}
