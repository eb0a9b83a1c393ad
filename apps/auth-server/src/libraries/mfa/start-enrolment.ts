import type { CoreContext } from "../../context.ts";
import type { RequestMeta } from "../audit.ts";
import { type ReauthInput, requireReauth } from "../privacy/reauth.ts";
import { beginTotpEnrolment, type Enrolment } from "./enrolment.ts";

/**
 * Starting two-step enrolment from the account page or the API: the email must be verified (checked first, so an
 * unverified account hears why), then the user re-authenticates (password, or a sign-in within
 * REAUTH_WINDOW_SECONDS; ASVS 7.5.1), then a fresh secret is stored. The pending enrolment stays confirmable for
 * `PENDING_ENROLMENT_SECONDS` only (enrolment.ts), so the re-authentication also covers the recovery codes it yields.
 */
export async function startTotpEnrolment(deps: CoreContext, meta: RequestMeta, input: ReauthInput): Promise<Enrolment> {
  // An unverified address is refused by beginTotpEnrolment before anything else.
  if (input.user.emailVerifiedAt) await requireReauth(deps, meta, input);
  return beginTotpEnrolment(deps, meta, input.user);
}
