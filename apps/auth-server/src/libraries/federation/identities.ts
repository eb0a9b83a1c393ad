import type { AppContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { countIdentitiesOfUser, deleteIdentity, listIdentitiesOfUser } from "../../queries/federation.ts";
import type { UserRow } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { checkPasswordAgain } from "../password-step.ts";

// The account page's linked sign-ins: list, unlink (never the last way in), and the check before linking another.

/** The account page's list. */
export async function identitiesOf(ctx: AppContext, userId: string) {
  return listIdentitiesOfUser(ctx.db, userId);
}

/**
 * Unlinks one identity after the current password (when the account has one). The last way to sign in cannot go: an
 * account without a password keeps at least one identity.
 */
export async function unlinkIdentity(
  ctx: AppContext,
  user: UserRow,
  input: { identityId: string; password: string | undefined; meta: RequestMeta },
): Promise<void> {
  if (user.passwordHash) {
    await checkPasswordAgain(ctx, { user, password: input.password ?? "", meta: input.meta, field: "password" });
  } else if ((await countIdentitiesOfUser(ctx.db, user.id)) <= 1) {
    throw new AppError("LAST_SIGN_IN_METHOD");
  }
  await ctx.db.transaction(async (tx) => {
    const removed = await deleteIdentity(tx, user.id, input.identityId);
    if (!removed) throw new AppError("IDENTITY_NOT_FOUND");
    await audit(tx, input.meta, {
      event: "user.identity_unlinked",
      outcome: "success",
      userId: user.id,
      details: { identityId: removed.id },
    });
  });
}

/** Before a link started from the account page: the current password when the account has one. */
export async function checkLinkAllowed(
  ctx: AppContext,
  user: UserRow,
  password: string | undefined,
  meta: RequestMeta,
) {
  if (user.passwordHash) {
    await checkPasswordAgain(ctx, { user, password: password ?? "", meta, field: "password" });
  }
}
