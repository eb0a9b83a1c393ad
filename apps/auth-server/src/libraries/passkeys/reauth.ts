import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import type { UserRow } from "../../queries/users.ts";
import type { RequestMeta } from "../audit.ts";
import { withCodeGuard } from "../mfa/enrolment.ts";
import { useSecondFactor } from "../mfa/factor.ts";
import { checkPasswordAgain } from "../password-step.ts";

/**
 * The fresh proof a passkey change needs (SECURITY.md: adding or removing a factor asks for a fresh password or code):
 * the current password (`checkPasswordAgain`: counted and throttled like a sign-in), or else a code from the
 * authenticator app or a recovery code (`withCodeGuard`: in line, throttled, a wrong code counted; the code is used up).
 * Nothing typed: VALIDATION_FAILED naming the password field.
 */
export async function reauthenticate(
  ctx: CoreContext,
  meta: RequestMeta,
  user: UserRow,
  proof: { password?: string | undefined; code?: string | undefined },
): Promise<"pwd" | "otp" | "recovery_code"> {
  if (proof.password) {
    await checkPasswordAgain(ctx, { user, password: proof.password, meta, field: "password" });
    return "pwd";
  }
  if (proof.code) {
    const code = proof.code;
    return withCodeGuard(ctx, meta, user.id, async () => {
      const used = await useSecondFactor(ctx, ctx.db, user.id, code);
      if (!used) throw new AppError("INVALID_OTP", undefined, [{ field: "code", message: "That code is not valid." }]);
      return used;
    });
  }
  throw new AppError("VALIDATION_FAILED", "Enter your password.", [
    { field: "password", message: "Enter your current password." },
  ]);
}
