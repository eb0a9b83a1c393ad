import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config/index.ts";
import { AppError } from "../../errors/index.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { type CurrentSession, requireSession, setSessionCookie } from "../../http/session.ts";
import type { Continuation } from "../../libraries/accounts/return-to.ts";
import {
  auditFederationFailure,
  completeFederatedSignIn,
  confirmPendingLink,
  type FederatedOutcome,
  pendingLink,
} from "../../libraries/federation/accounts.ts";
import { checkLinkAllowed, identitiesOf, unlinkIdentity } from "../../libraries/federation/identities.ts";
import { canProveWithPasskey } from "../../libraries/federation/passkey-link.ts";
import { buttonsFor, getProvider, type IdentityProviderRow } from "../../libraries/federation/providers.ts";
import { finishUpstream, startUpstream } from "../../libraries/federation/upstream.ts";
import type { UserRow } from "../../libraries/sessions.ts";
import { federationEmailPages } from "./federation-email.ts";
import { federationPasskeyPages } from "./federation-passkey.ts";
import { formRoute, signedInFormRoute } from "./form-route.ts";
import { setMfaCookie } from "./mfa-cookie.ts";
import {
  continuationFrom,
  destination,
  errorMap,
  isFormError,
  renderPage,
  seeOther,
  str,
  withContinuation,
} from "./render.ts";

const html = { errorFormat: "html" as const };

/**
 * Sign-in with upstream providers (libraries/federation):
 *
 *   GET  /federation/:slug/start      a flow (cookie) and a 303 to the provider
 *   GET  /federation/:slug/callback   the provider's answer, verified; then sign in, register, or a pending link
 *   GET  /federation/link             an identity whose email has an account: prove that account first
 *   POST /federation/link             the account's password; only then is the identity linked
 *                                     (or an emailed link: federation-email.ts; or a passkey: federation-passkey.ts)
 *   GET  /account/identities          linked sign-ins (also a section of /account)
 *   POST /account/identities/link     link another provider (current password first)
 *   POST /account/identities/unlink   unlink one (current password first; never the last way to sign in)
 *
 * Two cookies, each a 256-bit value whose SHA-256 names a single-use flow row: the round trip's (state, nonce, PKCE)
 * and the pending link's. SameSite=Lax: the provider's redirect back is a top-level GET, which Lax lets through.
 */
export async function federationPages(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;
  await app.register(federationEmailPages);
  await app.register(federationPasskeyPages);
  const flowCookie = cookieOf(config, "fed");
  const linkCookie = cookieOf(config, "fed_link");

  /** An enabled provider that this client's pages may show (`client_ids`), or PROVIDER_NOT_FOUND. */
  async function providerFor(slug: unknown, continuation: Continuation | "any"): Promise<IdentityProviderRow> {
    const name = str(slug, 40);
    if (!name || !/^[a-z0-9-]+$/.test(name)) throw new AppError("PROVIDER_NOT_FOUND");
    const provider = await getProvider(app.ctx, name);
    const visible =
      continuation === "any" || provider.clientIds === null || provider.clientIds.includes(continuation.clientId ?? "");
    if (provider.disabledAt || !visible) throw new AppError("PROVIDER_NOT_FOUND");
    return provider;
  }

  async function answer(reply: FastifyReply, outcome: FederatedOutcome, c: Continuation) {
    switch (outcome.kind) {
      case "signed_in":
        setSessionCookie(reply, config, outcome.signedIn.token, outcome.signedIn.session.expiresAt);
        return seeOther(reply, destination(c));
      case "second_factor":
        setMfaCookie(reply, config, outcome.secondFactor.token, outcome.secondFactor.expiresAt);
        return seeOther(reply, withContinuation("/login/otp", c));
      case "pending_link":
        linkCookie.set(reply, outcome.cookie, outcome.expiresAt);
        return seeOther(reply, "/federation/link");
      case "linked":
        return seeOther(reply, "/account/identities?notice=linked");
    }
    return reply;
  }

  app.get("/federation/:slug/start", { config: html }, async (request, reply) => {
    const continuation = continuationFrom(request.query);
    const provider = await providerFor((request.params as { slug?: unknown }).slug, continuation);
    const started = await startUpstream(app.ctx, provider, { continuation });
    flowCookie.set(reply, started.cookie, started.expiresAt);
    return seeOther(reply, started.location);
  });

  app.get(
    "/federation/:slug/callback",
    { config: { ...html, rateLimit: routeRateLimit(config, "login") } },
    async (request, reply) => {
      const slug = str((request.params as { slug?: unknown }).slug, 40);
      const provider = await getProvider(app.ctx, slug && /^[a-z0-9-]+$/.test(slug) ? slug : "-");
      if (provider.disabledAt) throw new AppError("PROVIDER_NOT_FOUND");
      const raw = request.raw.url ?? "";
      const query = new URLSearchParams(raw.includes("?") ? raw.slice(raw.indexOf("?") + 1) : "");
      const cookie = flowCookie.get(request);
      flowCookie.clear(reply);
      try {
        const result = await finishUpstream(app.ctx, provider, { cookie, query });
        const current = await request.currentSession();
        const outcome = await completeFederatedSignIn(app.ctx, provider, result, {
          meta: request.meta,
          existing: current?.session ?? null,
        });
        return answer(reply, outcome, result.continuation);
      } catch (error) {
        if (error instanceof AppError) await auditFederationFailure(app.ctx, request.meta, provider.slug, error);
        throw error;
      }
    },
  );

  async function renderLink(request: FastifyRequest, reply: FastifyReply, error?: AppError) {
    const pending = await pendingLink(app.ctx, linkCookie.get(request));
    if (!pending) throw new AppError("FEDERATION_STATE_INVALID");
    return renderPage(
      request,
      reply,
      "federation-link",
      {
        title: "Link your sign-in",
        continuation: pending.continuation,
        providerName: pending.provider.displayName,
        email: pending.user.email,
        hasPassword: pending.user.passwordHash !== null,
        hasPasskey: await canProveWithPasskey(app.ctx, pending.user.id),
        formError: error?.message,
        links: { login: withContinuation("/login", pending.continuation) },
      },
      error?.status ?? 200,
    );
  }

  app.get("/federation/link", { config: html }, async (request, reply) => renderLink(request, reply));

  app.post(
    "/federation/link",
    { config: { ...html, rateLimit: routeRateLimit(config, "login") }, preHandler: app.csrfProtection },
    formRoute({
      handle: async (request, reply, { body }) => {
        const current = await request.currentSession();
        const { outcome, continuation } = await confirmPendingLink(app.ctx, {
          cookie: linkCookie.get(request),
          password: str(body.password, 1024) ?? "",
          meta: request.meta,
          existing: current?.session ?? null,
        });
        linkCookie.clear(reply);
        return answer(reply, outcome, continuation);
      },
      view: (request, reply, _form, error) => renderLink(request, reply, error),
    }),
  );

  async function renderIdentities(
    request: FastifyRequest,
    reply: FastifyReply,
    current: CurrentSession,
    error?: AppError,
  ) {
    const notice = str((request.query as Record<string, unknown>).notice, 20) === "linked" ? "linked" : undefined;
    return renderPage(
      request,
      reply,
      "federation-identities",
      {
        title: "Linked sign-ins",
        notice: notice ? { kind: "ok", text: "The sign-in was linked to your account." } : undefined,
        ...(await identitiesSection(request.server, current.user)),
        errors: error ? errorMap(error) : {},
        formError: error && Object.keys(errorMap(error)).length === 0 ? error.message : undefined,
      },
      error?.status ?? 200,
    );
  }

  app.get("/account/identities", { config: html }, async (request, reply) => {
    const current = await requireSession(request, reply, "/account/identities");
    if (!current) return reply;
    return renderIdentities(request, reply, current);
  });

  const passwordPost = {
    config: { ...html, rateLimit: routeRateLimit(config, "login") },
    preHandler: app.csrfProtection,
  };
  const shows = (error: unknown): error is AppError =>
    isFormError(error) ||
    (error instanceof AppError &&
      ["LAST_SIGN_IN_METHOD", "IDENTITY_NOT_FOUND", "PROVIDER_NOT_FOUND", "IDENTITY_IN_USE"].includes(error.code));

  app.post(
    "/account/identities/link",
    passwordPost,
    signedInFormRoute("/account/identities", {
      shows,
      handle: async (request, reply, { body, current }) => {
        const provider = await providerFor(body.provider, "any");
        await checkLinkAllowed(app.ctx, current.user, str(body.password, 1024), request.meta);
        const started = await startUpstream(app.ctx, provider, {
          continuation: {},
          linkToUserId: current.user.id,
        });
        flowCookie.set(reply, started.cookie, started.expiresAt);
        return seeOther(reply, started.location);
      },
      view: (request, reply, { current }, error) => renderIdentities(request, reply, current, error),
    }),
  );

  app.post(
    "/account/identities/unlink",
    passwordPost,
    signedInFormRoute("/account/identities", {
      shows,
      handle: async (request, reply, { body, current }) => {
        const identityId = str(body.identityId, 36);
        if (!identityId || !/^[0-9a-f-]{36}$/.test(identityId)) throw new AppError("IDENTITY_NOT_FOUND");
        await unlinkIdentity(app.ctx, current.user, {
          identityId,
          password: str(body.password, 1024),
          meta: request.meta,
        });
        return seeOther(reply, "/account/identities");
      },
      view: (request, reply, { current }, error) => renderIdentities(request, reply, current, error),
    }),
  );
}

/** What `views/pages/account/_identities.eta` shows: the linked sign-ins and the providers that can still be linked. */
export async function identitiesSection(app: FastifyInstance, user: UserRow) {
  const identities = await identitiesOf(app.ctx, user.id);
  const linked = new Set(identities.map((i) => i.providerSlug));
  const providers = await buttonsFor(app.ctx, undefined, { everyClient: true });
  return {
    identities: identities.map((i) => ({
      id: i.id,
      provider: i.providerName,
      label: i.email ?? i.displayName ?? i.subject,
      linkedAt: i.linkedAt.toISOString().slice(0, 10),
      linkedOn: i.linkedAt,
    })),
    linkable: providers.filter((p) => !linked.has(p.slug)),
    hasPassword: user.passwordHash !== null,
  };
}

/** The provider buttons of the sign-in and register pages (`views/pages/_providers.eta`), and where each starts. */
export async function providerButtons(app: FastifyInstance, continuation: Continuation) {
  const buttons = await buttonsFor(app.ctx, continuation.clientId);
  return buttons.map((b) => ({ ...b, href: withContinuation(`/federation/${b.slug}/start`, continuation) }));
}

/**
 * `idp_hint` (on /login, or inside the pending /authorize request it returns to): the start URL of that provider when
 * it is enabled and shown for this client, so the sign-in page is skipped. Unknown hints are ignored.
 */
export async function idpHintLocation(
  app: FastifyInstance,
  query: Record<string, unknown>,
  continuation: Continuation,
): Promise<string | undefined> {
  let hint = str(query.idp_hint, 40);
  if (!hint && continuation.returnTo?.startsWith("/authorize?")) {
    hint = new URLSearchParams(continuation.returnTo.slice("/authorize?".length)).get("idp_hint") ?? undefined;
  }
  if (!hint) return undefined;
  return (await providerButtons(app, continuation)).find((b) => b.slug === hint)?.href;
}

export function cookieOf(config: Config, name: string) {
  const cookieName = config.cookieSecure ? `__Host-tessera_${name}` : `tessera_${name}`;
  const options = { path: "/", httpOnly: true, secure: config.cookieSecure, sameSite: "lax" as const };
  return {
    set: (reply: FastifyReply, value: string, expires: Date) =>
      reply.setCookie(cookieName, value, { ...options, expires }),
    clear: (reply: FastifyReply) => reply.clearCookie(cookieName, options),
    get: (request: FastifyRequest) => request.cookies[cookieName],
  };
}
