import type { FastifyInstance } from "fastify";
import { jsonSameOriginOnly } from "../../http/csrf.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { setSessionCookie } from "../../http/session.ts";
import { beginPasskeyLink, confirmPasskeyLink } from "../../libraries/federation/passkey-link.ts";
import { passkeySchemas } from "../../libraries/passkeys/schemas.ts";
import { parse } from "../../validation.ts";
import { cookieOf } from "./federation.ts";
import { destination } from "./render.ts";

/**
 * The passkey proof of a pending link (libraries/federation/passkey-link.ts), as JSON for public/tessera.js on the
 * link page. CSRF-protected like the passkey API: `application/json` from the same origin, and the page's `_csrf`.
 *
 *   POST /federation/link/passkey/options   request options for the pending account's passkeys (UV required)
 *   POST /federation/link/passkey           `{ credential }`: linked and signed in; `{ redirect }`
 */
export async function federationPasskeyPages(app: FastifyInstance): Promise<void> {
  const { config } = app.ctx;
  const linkCookie = cookieOf(config, "fed_link");
  // The same cookie as routes/api/passkeys.ts (`ceremonyCookieName`): one ceremony per browser at a time, and the
  // purpose stored with it keeps a sign-in's challenge out of this flow and this flow's out of sign-in.
  const ceremonyCookie = cookieOf(config, "webauthn");
  const post = {
    config: { errorFormat: "json" as const, rateLimit: routeRateLimit(config, "login") },
    preHandler: [jsonSameOriginOnly, app.csrfProtection],
  };

  app.post("/federation/link/passkey/options", post, async (request, reply) => {
    const begun = await beginPasskeyLink(app.ctx, linkCookie.get(request));
    ceremonyCookie.set(reply, begun.token, begun.expiresAt);
    return begun.options;
  });

  app.post("/federation/link/passkey", post, async (request, reply) => {
    const input = parse(passkeySchemas.authenticationVerify, request.body);
    const current = await request.currentSession();
    const token = ceremonyCookie.get(request);
    ceremonyCookie.clear(reply);
    const { signedIn, continuation } = await confirmPasskeyLink(app.ctx, {
      token,
      pendingCookie: linkCookie.get(request),
      credential: input.credential,
      meta: request.meta,
      existing: current?.session ?? null,
    });
    linkCookie.clear(reply);
    setSessionCookie(reply, config, signedIn.token, signedIn.session.expiresAt);
    return { redirect: destination(continuation) };
  });
}
