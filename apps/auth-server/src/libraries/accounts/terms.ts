import { type Executor, termsAcceptances } from "@tessera/db";
import { desc, eq } from "drizzle-orm";
import type { Config } from "../../config/index.ts";
import { AppError } from "../../errors/index.ts";

/**
 * Terms of service and privacy notice acceptance (#16). When TERMS_VERSION/URL or PRIVACY_VERSION/URL are set,
 * registering needs the box ticked (TERMS_NOT_ACCEPTED otherwise), and the acceptance is recorded with the versions
 * and the time (`terms_acceptances`, in the export). When a configured version is newer than the user's last
 * acceptance (or the user never accepted: an account made by an upstream sign-in or an admin), the next /authorize
 * for an app shows the terms interstitial (routes/pages/terms.ts) before any code is issued; prompt=none answers
 * interaction_required instead.
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

/**
 * True when documents are configured and the user's latest acceptance is not of the configured versions (a version
 * the configuration does not set is not compared). Answered from the newest `terms_acceptances` row.
 */
export async function termsAcceptanceNeeded(
  db: Executor,
  config: Pick<Config, "privacy">,
  userId: string,
): Promise<boolean> {
  if (!termsConfigured(config)) return false;
  const [latest] = await db
    .select({ termsVersion: termsAcceptances.termsVersion, privacyVersion: termsAcceptances.privacyVersion })
    .from(termsAcceptances)
    .where(eq(termsAcceptances.userId, userId))
    .orderBy(desc(termsAcceptances.acceptedAt))
    .limit(1);
  if (!latest) return true;
  const { terms, privacy } = config.privacy;
  return Boolean(
    (terms && latest.termsVersion !== terms.version) || (privacy && latest.privacyVersion !== privacy.version),
  );
}

/** A configured document to accept, as clients see it (direct sign-in's `required_documents`). */
export interface TermsDocument {
  kind: "terms" | "privacy";
  version: string;
  url: string;
}

/** The configured documents, terms first (none when nothing is configured). */
export function currentDocuments(config: Pick<Config, "privacy">): TermsDocument[] {
  const { terms, privacy } = config.privacy;
  return [
    ...(terms ? [{ kind: "terms" as const, ...terms }] : []),
    ...(privacy ? [{ kind: "privacy" as const, ...privacy }] : []),
  ];
}

/**
 * An explicit acceptance sent by a client on the user's behalf (direct sign-in): it counts only when it names the
 * current version of every configured document. Returns "current" (names them all), "stale" (names a version that is
 * not the current one: the user saw an older text) or "none" (names nothing, or not every document).
 */
export function explicitAcceptance(
  config: Pick<Config, "privacy">,
  sent: { terms: string | undefined; privacy: string | undefined },
): "current" | "stale" | "none" {
  const documents = currentDocuments(config);
  if (documents.some((d) => sent[d.kind] !== undefined && sent[d.kind] !== d.version)) return "stale";
  return documents.length > 0 && documents.every((d) => sent[d.kind] === d.version) ? "current" : "none";
}
