import type { Executor } from "@tessera/db";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  type ClientRow,
  findClientByClientId,
  forgetClient,
  insertClient,
  replaceClientSecret,
  selectClients,
  updateClientByClientId,
} from "../../queries/clients.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { addSeconds } from "../clock.ts";
import { sha256 } from "../crypto.ts";
import { rowValues, type UntrustedClientInput, validClientInput, validClientUpdate } from "./input.ts";
import { newClientId, newClientSecret } from "./secrets.ts";

/** Who performed an admin action, for the audit row written in the same transaction as the change. */
export interface Actor {
  actorId: string | null;
  meta: RequestMeta;
  /** Where the action came from (`api`, `cli`), recorded in the audit details. */
  via?: string;
}

function auditDetails(actor: Actor | undefined, extra: Record<string, unknown> = {}) {
  return { ...(actor?.via ? { via: actor.via } : {}), ...extra };
}

const NO_ACTOR: Actor = { actorId: null, meta: { ip: undefined, userAgent: undefined } };

/**
 * Registers a confidential client (a back end holding a secret). The secret is returned once, here; afterwards only
 * its hash exists. `tokenEndpointAuthMethod: "none"` is refused here: use createPublicClient.
 */
export async function createClient(
  deps: CoreContext,
  input: UntrustedClientInput,
  actor: Actor = NO_ACTOR,
): Promise<{ client: ClientRow; clientSecret: string }> {
  const { client, clientSecret } = await insertNewClient(deps, input, actor, false);
  return { client, clientSecret: clientSecret as string };
}

/**
 * Registers a public client (SPA, native game: RFC 8252 8.5, it cannot keep a secret): token_endpoint_auth_method
 * none, no secret; PKCE is required of every client anyway. Private-use redirect schemes are accepted only here.
 */
export async function createPublicClient(
  deps: CoreContext,
  input: UntrustedClientInput,
  actor: Actor = NO_ACTOR,
): Promise<{ client: ClientRow; clientSecret: undefined }> {
  const { client } = await insertNewClient(deps, { ...input, tokenEndpointAuthMethod: "none" }, actor, true);
  return { client, clientSecret: undefined };
}

async function insertNewClient(
  deps: CoreContext,
  input: UntrustedClientInput,
  actor: Actor,
  expectPublic: boolean,
): Promise<{ client: ClientRow; clientSecret: string | null }> {
  const valid = validClientInput(input);
  const isPublic = valid.tokenEndpointAuthMethod === "none";
  if (isPublic !== expectPublic) {
    throw new AppError("VALIDATION_FAILED", undefined, [
      { field: "tokenEndpointAuthMethod", message: "none registers a public client (createPublicClient)" },
    ]);
  }
  const clientSecret = isPublic ? null : newClientSecret();
  const now = deps.clock.now();
  const client = await deps.db.transaction(async (tx) => {
    const created = await insertClient(tx, {
      ...rowValues(valid),
      name: valid.name,
      redirectUris: [...new Set(valid.redirectUris)],
      clientId: newClientId(),
      clientSecretHash: clientSecret === null ? null : sha256(clientSecret),
      tokenEndpointAuthMethod: valid.tokenEndpointAuthMethod ?? "client_secret_basic",
      idTokenSignedResponseAlg: valid.idTokenSignedResponseAlg ?? deps.config.tokens.signingAlg,
      createdAt: now,
      updatedAt: now,
    });
    await audit(tx, actor.meta, {
      event: "admin.client_created",
      outcome: "success",
      actorId: actor.actorId,
      clientId: created.clientId,
      details: auditDetails(actor, { name: created.name, tokenEndpointAuthMethod: created.tokenEndpointAuthMethod }),
    });
    return created;
  });
  return { client, clientSecret };
}

/** A client by client_id (disabled ones too), or CLIENT_NOT_FOUND. */
export async function getClient(db: Executor, clientId: string): Promise<ClientRow> {
  const client =
    typeof clientId === "string" && clientId.length > 0 && clientId.length <= 128
      ? await findClientByClientId(db, clientId)
      : null;
  if (!client) throw new AppError("CLIENT_NOT_FOUND");
  return client;
}

export async function listClients(
  db: Executor,
  options: { limit?: number | undefined; after?: string | undefined; includeDisabled?: boolean | undefined } = {},
): Promise<ClientRow[]> {
  return selectClients(db, {
    limit: Math.min(Math.max(options.limit ?? 100, 1), 500),
    after: options.after,
    includeDisabled: options.includeDisabled ?? true,
  });
}

/**
 * Issues a new secret. The previous one stays valid for `tokens.clientSecretOverlapSeconds` so a deployment can roll
 * out the new secret without downtime; a second rotation within the overlap replaces the older previous secret.
 */
export async function rotateClientSecret(
  deps: CoreContext,
  clientId: string,
  actor: Actor = NO_ACTOR,
): Promise<{ client: ClientRow; clientSecret: string }> {
  const existing = await getClient(deps.db, clientId);
  if (existing.tokenEndpointAuthMethod === "none") throw new AppError("CLIENT_IS_PUBLIC");
  const clientSecret = newClientSecret();
  const now = deps.clock.now();
  const overlap = deps.config.tokens.clientSecretOverlapSeconds;
  const client = await deps.db.transaction(async (tx) => {
    // The previous hash is copied inside the UPDATE itself, so two concurrent rotations cannot lose a secret.
    const updated = await replaceClientSecret(tx, clientId, {
      secretHash: sha256(clientSecret),
      previousExpiresAt: overlap > 0 ? addSeconds(now, overlap) : null,
      now,
    });
    if (!updated) throw new AppError("CLIENT_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_secret_rotated",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: auditDetails(actor, { previousValidUntil: updated.previousSecretExpiresAt?.toISOString() ?? null }),
    });
    return updated;
  });
  forgetClient(deps.db, clientId);
  return { client, clientSecret };
}

/** Changes the given fields, validated like on creation. */
export async function updateClient(
  deps: CoreContext,
  clientId: string,
  patch: UntrustedClientInput,
  actor: Actor = NO_ACTOR,
): Promise<ClientRow> {
  const existing = await getClient(deps.db, clientId);
  const valid = validClientUpdate(patch, existing.tokenEndpointAuthMethod === "none");
  const result = await deps.db.transaction(async (tx) => {
    const updated = await updateClientByClientId(tx, clientId, { ...rowValues(valid), updatedAt: deps.clock.now() });
    if (!updated) throw new AppError("CLIENT_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_updated",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: auditDetails(actor, {
        fields: Object.keys(valid).filter((k) => valid[k as keyof typeof valid] !== undefined),
      }),
    });
    return updated;
  });
  forgetClient(deps.db, clientId);
  return result;
}

/**
 * Disables a client: it can no longer authenticate, start sign-ins or refresh (checked on every use). Idempotent:
 * disabling a disabled client keeps the original time.
 */
export async function disableClient(deps: CoreContext, clientId: string, actor: Actor = NO_ACTOR): Promise<ClientRow> {
  const existing = await getClient(deps.db, clientId);
  if (existing.disabledAt) return existing;
  const now = deps.clock.now();
  const result = await deps.db.transaction(async (tx) => {
    const updated = await updateClientByClientId(tx, clientId, { disabledAt: now, updatedAt: now });
    if (!updated) throw new AppError("CLIENT_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_disabled",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: auditDetails(actor),
    });
    return updated;
  });
  forgetClient(deps.db, clientId);
  return result;
}

/** Re-enables a disabled client. Idempotent. Its old refresh tokens stay bound to their sessions' expiry. */
export async function enableClient(deps: CoreContext, clientId: string, actor: Actor = NO_ACTOR): Promise<ClientRow> {
  const existing = await getClient(deps.db, clientId);
  if (!existing.disabledAt) return existing;
  const now = deps.clock.now();
  const result = await deps.db.transaction(async (tx) => {
    const updated = await updateClientByClientId(tx, clientId, { disabledAt: null, updatedAt: now });
    if (!updated) throw new AppError("CLIENT_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_enabled",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: auditDetails(actor),
    });
    return updated;
  });
  forgetClient(deps.db, clientId);
  return result;
}
