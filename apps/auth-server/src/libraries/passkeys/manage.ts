import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { deletePasskey, listPasskeys, renamePasskey } from "../../queries/passkeys.ts";
import type { UserRow } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { reauthenticate } from "./reauth.ts";

/** A passkey as the account page shows it (no key material). */
export interface PasskeyView {
  id: string;
  name: string;
  kind: "synced" | "device-bound";
  createdAt: string;
  lastUsedAt: string | null;
}

export async function passkeysOf(ctx: CoreContext, userId: string): Promise<PasskeyView[]> {
  return (await listPasskeys(ctx.db, userId)).map((p) => ({
    id: p.id,
    name: p.name,
    kind: p.backedUp ? "synced" : "device-bound",
    createdAt: p.createdAt.toISOString(),
    lastUsedAt: p.lastUsedAt?.toISOString() ?? null,
  }));
}

type Proof = { password?: string | undefined; code?: string | undefined };

/** Renames one of the user's passkeys after a fresh password or code; PASSKEY_NOT_FOUND for anyone else's. */
export async function renamePasskeyChecked(
  ctx: CoreContext,
  meta: RequestMeta,
  input: { user: UserRow; id: string; name: string } & Proof,
): Promise<void> {
  await proven(ctx, meta, input.user, "passkey.renamed", input);
  if (!(await renamePasskey(ctx.db, input.user.id, input.id, input.name))) throw new AppError("PASSKEY_NOT_FOUND");
  await audit(ctx.db, meta, {
    event: "passkey.renamed",
    outcome: "success",
    userId: input.user.id,
    details: { passkeyId: input.id },
  });
}

/** Removes one of the user's passkeys after a fresh password or code; PASSKEY_NOT_FOUND for anyone else's. */
export async function removePasskeyChecked(
  ctx: CoreContext,
  meta: RequestMeta,
  input: { user: UserRow; id: string } & Proof,
): Promise<void> {
  await proven(ctx, meta, input.user, "passkey.removed", input);
  await ctx.db.transaction(async (tx) => {
    const removed = await deletePasskey(tx, input.user.id, input.id);
    if (!removed) throw new AppError("PASSKEY_NOT_FOUND");
    await audit(tx, meta, {
      event: "passkey.removed",
      outcome: "success",
      userId: input.user.id,
      details: { passkeyId: removed.id },
    });
  });
}

async function proven(ctx: CoreContext, meta: RequestMeta, user: UserRow, event: string, proof: Proof) {
  try {
    await reauthenticate(ctx, meta, user, proof);
  } catch (error) {
    const reason = error instanceof AppError ? error.code : "error";
    await audit(ctx.db, meta, { event, outcome: "failure", userId: user.id, details: { reason } });
    throw error;
  }
}
