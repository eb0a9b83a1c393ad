import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError } from "../../errors/index.ts";
import { handleWebhook } from "../../libraries/billing/webhooks.ts";

/** Provider events can be larger than the app-wide 64 KiB form limit (a subscription with its invoice expanded). */
const WEBHOOK_BODY_LIMIT = 512 * 1024;

/**
 * POST /webhooks/stripe and /webhooks/btcpay. A signature covers the exact bytes sent, so these routes (and only
 * these: the parser is registered inside this encapsulated plugin) keep the body as a Buffer instead of parsing it.
 * Only JSON is accepted. Answers 200 `{ received, duplicate }`, 400 WEBHOOK_SIGNATURE_INVALID on a forged or stale
 * signature, 501 BILLING_DISABLED when the provider is not configured, 502 when the provider's API failed (the
 * provider retries).
 */
export async function webhookRoutes(app: FastifyInstance): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    /^application\/json(\s*;.*)?$/i,
    { parseAs: "buffer", bodyLimit: WEBHOOK_BODY_LIMIT },
    (_request, body, done) => done(null, body),
  );
  app.addContentTypeParser("*", (_request, _payload, done) => done(new AppError("UNSUPPORTED_MEDIA_TYPE"), undefined));

  const rawBody = (request: FastifyRequest): Buffer => {
    if (!Buffer.isBuffer(request.body))
      throw new AppError("UNSUPPORTED_MEDIA_TYPE", "Send the event as application/json.");
    return request.body;
  };
  const options = { bodyLimit: WEBHOOK_BODY_LIMIT };

  app.post("/webhooks/stripe", options, async (request) =>
    handleWebhook(app.ctx, request.log, {
      provider: "stripe",
      rawBody: rawBody(request),
      headers: request.headers,
      meta: request.meta,
    }),
  );
  app.post("/webhooks/btcpay", options, async (request) =>
    handleWebhook(app.ctx, request.log, {
      provider: "btcpay",
      rawBody: rawBody(request),
      headers: request.headers,
      meta: request.meta,
    }),
  );
}
