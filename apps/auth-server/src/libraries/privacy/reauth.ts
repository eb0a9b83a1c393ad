import { z } from "zod";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import type { SessionRow } from "../../queries/sessions.ts";
import type { UserRow } from "../../queries/users.ts";
import { confirmStepUp } from "../admin/step-up.ts";
import type { RequestMeta } from "../audit.ts";

/** What proved the user is still at the keyboard. */
export type Reauth = "password" | "otp" | "recent_sign_in";

export interface ReauthInput {
  user: UserRow;
  session: Pick<SessionRow, "authenticatedAt">;
  /** The current password typed again (form field `confirm_password`). */
  password?: string | undefined;
  /** A current code or a recovery code (form field `confirm_code`). */
  code?: string | undefined;
}

/** Whether the session's last sign-in (password, code or upstream) is within REAUTH_WINDOW_SECONDS of now. */
export function signedInRecently(deps: CoreContext, session: Pick<SessionRow, "authenticatedAt">): boolean {
  const age = deps.clock.now().getTime() - session.authenticatedAt.getTime();
  return age >= 0 && age <= deps.config.privacy.reauthWindowSeconds * 1000;
}

/**
 * Re-authentication before changing a factor or reading everything about the user (ASVS 7.5.1, issue #16): a password
 * or code typed now (counted and throttled like sign-in guesses, `confirmStepUp`), or a sign-in within
 * REAUTH_WINDOW_SECONDS. A session alone, older than that, is refused with STEP_UP_REQUIRED: a stolen cookie must not
 * be enough to put the thief's authenticator on the account, keep its recovery codes, or download its data.
 */
export async function requireReauth(deps: CoreContext, meta: RequestMeta, input: ReauthInput): Promise<Reauth> {
  if (input.password || input.code) {
    await confirmStepUp(deps, meta, input);
    return input.code ? "otp" : "password";
  }
  if (signedInRecently(deps, input.session)) return "recent_sign_in";
  throw new AppError("STEP_UP_REQUIRED", undefined, [
    { field: "confirm_password", message: "Enter your password to continue." },
  ]);
}

/** The body of a re-authentication (POST /api/v1/me/export): the password, or a two-step code. */
export const reauthBody = z.strictObject({
  password: z.string().min(1).max(1024).optional(),
  code: z.string().trim().min(1).max(32).optional(),
});
