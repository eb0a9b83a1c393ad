import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { requireSession } from "../../http/session.ts";
import { revokeConsent } from "../../libraries/oauth/consent.ts";
import { parse } from "../../validation.ts";
import { seeOther } from "./render.ts";

const revokeBody = z.object({ clientId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "must be a client_id") });

/**
 * POST /account/consents/revoke: the account page's "Remove access" button (CSRF-protected form). Forgets the
 * approval and ends that application's refresh tokens for this user; an unknown one is CONSENT_NOT_FOUND (404 page).
 */
export async function accountConsentPages(app: FastifyInstance): Promise<void> {
  app.post(
    "/account/consents/revoke",
    { config: { errorFormat: "html" }, preHandler: app.csrfProtection },
    async (request, reply) => {
      const current = await requireSession(request, reply, "/account");
      if (!current) return reply;
      const { clientId } = parse(revokeBody, request.body);
      await revokeConsent(app.ctx, { userId: current.user.id, clientId, meta: request.meta });
      return seeOther(reply, "/account?notice=consent_revoked");
    },
  );
}
