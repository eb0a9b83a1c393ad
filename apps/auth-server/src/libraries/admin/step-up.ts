import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import type { UserRow } from "../../queries/users.ts";
import type { RequestMeta } from "../audit.ts";
import { withCodeGuard } from "../mfa/enrolment.ts";
import { useSecondFactor } from "../mfa/factor.ts";
import { checkPasswordAgain } from "../password-step.ts";

/**
 * The fresh proof a sensitive console action asks for (#14: rotate a secret, delete a user, change an admin): the
 * admin's current password or a current code from their authenticator. Both are counted and throttled like sign-in
 * guesses (password-step.ts, the second-factor guard), so a stolen console session cannot guess its way through.
 */
export async function confirmStepUp(
  deps: CoreContext,
  meta: RequestMeta,
  input: { user: UserRow; password?: string | undefined; code?: string | undefined },
): Promise<void> {
  if (input.code) {
    const code = input.code;
    await withCodeGuard(deps, meta, input.user.id, () =>
      deps.db.transaction(async (tx) => {
        const used = await useSecondFactor(deps, tx, input.user.id, code);
        if (!used) {
          throw new AppError("INVALID_OTP", undefined, [{ field: "confirm_code", message: "That code is not valid." }]);
        }
      }),
    );
    return;
  }
  if (input.password) {
    await checkPasswordAgain(deps, { user: input.user, password: input.password, meta, field: "confirm_password" });
    return;
  }
  throw new AppError("STEP_UP_REQUIRED", undefined, [
    { field: "confirm_code", message: "Enter a code from your authenticator app, or your password." },
  ]);
}
