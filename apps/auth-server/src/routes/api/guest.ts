import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { noStore } from "../../http/errors.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { createGuest, endGuest, upgradeGuest, userFromAccessToken } from "../../libraries/accounts/guests.ts";
import { guestCreateBody, guestUpgradeBody } from "../../libraries/accounts/schemas.ts";
import { authenticateClient } from "../../libraries/clients/index.ts";
import { parse } from "../../validation.ts";
import { clientCredentials } from "../oauth/http.ts";

/** `Authorization: Bearer <access token>` (RFC 6750 2.1), or undefined. */
function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return typeof header === "string" && /^bearer /i.test(header) ? header.slice(7).trim() : undefined;
}

/**
 * Guest accounts (libraries/accounts/guests.ts), JSON in and out, catalog error codes:
 * - POST /api/v1/guest, client-authenticated (Basic, or client_id + client_secret in the body): a new guest and its
 *   token response (`is_anonymous: true`).
 * - POST /api/v1/guest/upgrade, with the guest's access token as Bearer: `{ email, password }` makes it a full account
 *   in place (same `sub`); GUEST_EMAIL_IN_USE when the email has an account already (nothing is merged).
 * - DELETE /api/v1/guest, with the guest's access token: ends the guest (for example after the user signed in to an
 *   existing account instead).
 */
export async function guestApiRoutes(app: FastifyInstance): Promise<void> {
  const { ctx } = app;
  const json = { errorFormat: "json" as const, rateLimit: routeRateLimit(ctx.config, "guest") };

  app.post("/api/v1/guest", { config: json }, async (request, reply) => {
    const body = parse(guestCreateBody, request.body ?? {});
    const credentials = clientCredentials(request, body);
    if (!credentials) throw new AppError("INVALID_CLIENT");
    const client = await authenticateClient(ctx, credentials);
    return noStore(reply).send(await createGuest(ctx, client, body.scope, request.meta));
  });

  app.post("/api/v1/guest/upgrade", { config: json }, async (request, reply) => {
    const guest = await userFromAccessToken(ctx, bearer(request));
    const input = parse(guestUpgradeBody, request.body);
    const user = await upgradeGuest(ctx, guest, { ...input, meta: request.meta, log: request.log });
    return noStore(reply).send({ sub: user.id, email: user.email, email_verified: false, is_anonymous: false });
  });

  app.delete("/api/v1/guest", { config: json }, async (request, reply) => {
    const guest = await userFromAccessToken(ctx, bearer(request));
    await endGuest(ctx, guest, request.meta);
    return reply.code(204).send();
  });
}
