import { z } from "zod";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  type ApiKeyListRow,
  type ApiKeyRow,
  findUserByNormalizedEmail,
  insertApiKey,
  markApiKeyRevoked,
  selectApiKeys,
} from "../../queries/admin.ts";
import { findManageableUser } from "../../queries/user-status.ts";
import { parse } from "../../validation.ts";
import { audit } from "../audit.ts";
import type { Actor } from "../clients/index.ts";
import { randomToken, sha256 } from "../crypto.ts";
import { adminLevelOf } from "./levels.ts";

export type { ApiKeyListRow } from "../../queries/admin.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const apiKeyInputSchema = z.object({
  name: z.string().trim().min(1, "must be 1 to 100 characters").max(100, "must be 1 to 100 characters"),
  /** The owning admin's email; the acting admin when absent. A key acts with its owner's admin level. */
  owner_email: z.string().trim().max(254).optional(),
});

/** Admin API keys (#14), newest first. Hashes never leave the database. */
export async function listApiKeys(deps: Pick<CoreContext, "db">, limit = 200): Promise<ApiKeyListRow[]> {
  return selectApiKeys(deps.db, limit);
}

/**
 * Creates an API key for an admin (the acting admin, or the live admin named by `ownerEmail`) from the console or
 * the admin API. The key is returned once; only its SHA-256 is kept. Audited with the acting admin.
 */
export async function createApiKeyAs(
  deps: CoreContext,
  input: { name: string; ownerEmail?: string | undefined },
  actor: Actor & { actorId: string },
): Promise<{ apiKey: ApiKeyRow; key: string }> {
  const { name, owner_email } = parse(apiKeyInputSchema, {
    name: input.name,
    owner_email: input.ownerEmail,
  });
  const owner = owner_email
    ? await findUserByNormalizedEmail(deps.db, owner_email.toLowerCase())
    : await findManageableUser(deps.db, actor.actorId);
  if (!owner || adminLevelOf(owner) === null) {
    throw new AppError("VALIDATION_FAILED", undefined, [{ field: "owner_email", message: "is not an active admin" }]);
  }
  const key = randomToken("tak_");
  const now = deps.clock.now();
  const apiKey = await deps.db.transaction(async (tx) => {
    const row = await insertApiKey(tx, { name, keyHash: sha256(key), userId: owner.id, createdAt: now });
    await audit(tx, actor.meta, {
      event: "admin.api_key_created",
      outcome: "success",
      userId: owner.id,
      actorId: actor.actorId,
      details: { ...(actor.via ? { via: actor.via } : {}), name, keyId: row.id },
    });
    return row;
  });
  return { apiKey, key };
}

/** Revokes an API key: the next request with it is refused. Idempotent; audited with the acting admin. */
export async function revokeApiKey(deps: CoreContext, id: string, actor: Actor): Promise<ApiKeyRow> {
  if (!UUID.test(id)) throw new AppError("API_KEY_NOT_FOUND");
  return deps.db.transaction(async (tx) => {
    const now = deps.clock.now();
    const row = await markApiKeyRevoked(tx, id, now);
    if (!row) throw new AppError("API_KEY_NOT_FOUND");
    if (row.revokedAt?.getTime() === now.getTime()) {
      await audit(tx, actor.meta, {
        event: "admin.api_key_revoked",
        outcome: "success",
        userId: row.userId,
        actorId: actor.actorId,
        details: { ...(actor.via ? { via: actor.via } : {}), name: row.name, keyId: row.id },
      });
    }
    return row;
  });
}
