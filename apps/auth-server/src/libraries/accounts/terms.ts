import { type Executor, termsAcceptances } from "@tessera/db";
import type { Config } from "../../config/index.ts";
import { AppError } from "../../errors/index.ts";

/**
 * Terms of service and privacy notice acceptance (#16). When TERMS_VERSION/URL or PRIVACY_VERSION/URL are set,
 * registering needs the box ticked (TERMS_NOT_ACCEPTED otherwise), and the acceptance is recorded with the versions
 * and the time (`terms_acceptances`, in the export). Asking again after a new version, at sign-in, is not built yet.
 */
export function termsConfigured(config: Pick<Config, "privacy">): boolean {
  return Boolean(config.privacy.terms || config.privacy.privacy);
}

/** Refuses a registration without the box ticked when documents are configured (before any other work). */
export function requireTermsAccepted(config: Pick<Config, "privacy">, accepted: boolean | undefined): void {
  if (termsConfigured(config) && !accepted) {
    throw new AppError("TERMS_NOT_ACCEPTED", undefined, [
      { field: "acceptTerms", message: "Accept the terms of service and the privacy notice to continue." },
    ]);
  }
}

/** Records the acceptance of the configured versions (nothing when none is configured). */
export async function recordTermsAcceptance(
  db: Executor,
  config: Pick<Config, "privacy">,
  input: { userId: string; context: "register" | "sign_in"; now: Date },
): Promise<void> {
  if (!termsConfigured(config)) return;
  await db.insert(termsAcceptances).values({
    userId: input.userId,
    termsVersion: config.privacy.terms?.version ?? null,
    privacyVersion: config.privacy.privacy?.version ?? null,
    context: input.context,
    acceptedAt: input.now,
  });
}
