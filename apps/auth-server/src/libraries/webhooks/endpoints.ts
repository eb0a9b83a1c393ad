import { z } from "zod";
import { WEBHOOK_SECRET_OVERLAP_MAX_SECONDS } from "../../config/types.ts";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { findClientByClientId } from "../../queries/clients.ts";
import {
  deleteEndpoint,
  findEndpoint,
  setEndpointSecret,
  upsertEndpoint,
  type WebhookEndpointRow,
} from "../../queries/webhooks.ts";
import { parse } from "../../validation.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { registeredUriProblem } from "../clients/index.ts";
import { encrypt } from "../crypto.ts";
import { newWebhookSecret } from "./signing.ts";

/** The event types a client may subscribe to (issue #16). */
export const WEBHOOK_EVENT_TYPES = [
  "user.updated",
  "user.deleted",
  "session.ended",
  "roles.changed",
  "entitlements.changed",
  "consent.revoked",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const endpointInput = z.strictObject({
  url: z.string().max(2000),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length),
});

export interface WebhookEndpointView {
  clientId: string;
  url: string;
  events: string[];
  createdAt: Date;
  updatedAt: Date;
}

/** The secret is encrypted bound to the client's internal id, so a ciphertext copied to another client is useless. */
export function secretAad(clientUuid: string): string {
  return `webhook-secret:${clientUuid}`;
}

function view(clientId: string, row: WebhookEndpointRow): WebhookEndpointView {
  return { clientId, url: row.url, events: row.events, createdAt: row.createdAt, updatedAt: row.updatedAt };
}

async function clientUuid(deps: CoreContext, clientId: string): Promise<string> {
  const client = await findClientByClientId(deps.db, clientId);
  if (!client) throw new AppError("CLIENT_NOT_FOUND");
  return client.id;
}

export async function getWebhook(deps: CoreContext, clientId: string): Promise<WebhookEndpointView> {
  const row = await findEndpoint(deps.db, await clientUuid(deps, clientId));
  if (!row) throw new AppError("WEBHOOK_NOT_FOUND");
  return view(clientId, row);
}

/**
 * Sets a client's webhook URL and event types. A new endpoint gets a signing secret, returned here once; changing an
 * existing one keeps its secret (`secret` is then absent). Audited without the secret.
 */
export async function setWebhook(
  deps: CoreContext,
  clientId: string,
  input: unknown,
  actor: Actor,
): Promise<{ webhook: WebhookEndpointView; secret?: string }> {
  const parsed = { data: parse(endpointInput, input) };
  const problem = registeredUriProblem(parsed.data.url);
  if (problem) throw new AppError("INVALID_REDIRECT_URI", undefined, [{ field: "url", message: problem }]);
  const events = [...new Set(parsed.data.events)].sort();
  const id = await clientUuid(deps, clientId);
  const now = deps.clock.now();
  return deps.db.transaction(async (tx) => {
    const before = await findEndpoint(tx, id);
    const secret = before ? undefined : newWebhookSecret();
    const row = await upsertEndpoint(tx, {
      clientId: id,
      url: parsed.data.url,
      events,
      ...(secret ? { secretEncrypted: encrypt(deps.config.masterKey, secret, secretAad(id)) } : {}),
      now,
    });
    await audit(tx, actor.meta, {
      event: "admin.client_webhook_set",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: {
        ...(actor.via ? { via: actor.via } : {}),
        before: before ? { url: before.url, events: before.events } : null,
        after: { url: row.url, events: row.events },
      },
    });
    return secret ? { webhook: view(clientId, row), secret } : { webhook: view(clientId, row) };
  });
}

/** The admin API's rotate-secret body: how long the previous secret keeps signing, 0..7 days (default: the setting). */
export const rotateSecretBody = z.strictObject({
  overlap_seconds: z.number().int().min(0).max(WEBHOOK_SECRET_OVERLAP_MAX_SECONDS).optional(),
});

/**
 * A new signing secret, returned once; deliveries from now on (retries included) are signed with it, and also with the
 * previous secret (both in `webhook-signature`) for `overlapSeconds` — default `jobs.webhookSecretOverlapSeconds`
 * (WEBHOOK_SECRET_OVERLAP_SECONDS, 24 h) — so the app can deploy the new secret without refusing events meanwhile.
 * 0 ends the previous secret at once (a leaked secret). A second rotation within the overlap ends the older one.
 * The caller validates `overlapSeconds` (0..WEBHOOK_SECRET_OVERLAP_MAX_SECONDS).
 */
export async function rotateWebhookSecret(
  deps: CoreContext,
  clientId: string,
  actor: Actor,
  options: { overlapSeconds?: number } = {},
): Promise<{ webhook: WebhookEndpointView; secret: string; previousSecretExpiresAt: Date | null }> {
  const id = await clientUuid(deps, clientId);
  const secret = newWebhookSecret();
  const now = deps.clock.now();
  const overlapSeconds = options.overlapSeconds ?? deps.config.jobs.webhookSecretOverlapSeconds;
  const previousUntil = overlapSeconds > 0 ? new Date(now.getTime() + overlapSeconds * 1000) : null;
  return deps.db.transaction(async (tx) => {
    const row = await setEndpointSecret(
      tx,
      id,
      encrypt(deps.config.masterKey, secret, secretAad(id)),
      now,
      previousUntil,
    );
    if (!row) throw new AppError("WEBHOOK_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_webhook_secret_rotated",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: { ...(actor.via ? { via: actor.via } : {}), overlapSeconds },
    });
    return { webhook: view(clientId, row), secret, previousSecretExpiresAt: previousUntil };
  });
}

/** Removes the webhook; deliveries still queued for it are dropped when they come up (no endpoint to sign with). */
export async function removeWebhook(deps: CoreContext, clientId: string, actor: Actor): Promise<void> {
  const id = await clientUuid(deps, clientId);
  await deps.db.transaction(async (tx) => {
    const before = await findEndpoint(tx, id);
    if (!before || !(await deleteEndpoint(tx, id))) throw new AppError("WEBHOOK_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_webhook_removed",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: { ...(actor.via ? { via: actor.via } : {}), before: { url: before.url, events: before.events } },
    });
  });
}
