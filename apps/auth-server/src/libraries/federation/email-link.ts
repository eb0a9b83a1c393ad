import type { AppContext, Logger } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { translator } from "../../i18n/index.ts";
import { consumeFlow, findLiveFlow, insertFlow } from "../../queries/federation.ts";
import { renderView } from "../../views/index.ts";
import type { RequestMeta } from "../audit.ts";
import { audit } from "../audit.ts";
import { addSeconds } from "../clock.ts";
import { randomToken, safeEqual, sha256 } from "../crypto.ts";
import { sendInBackground } from "../mailer/index.ts";
import { emailLocale } from "../mailer/messages.ts";
import type { SessionRow } from "../sessions.ts";
import { type FederatedOutcome, link, pendingLink, signInOrSecondFactor } from "./accounts.ts";

/**
 * The other proof of an existing account for a pending link (accounts without a password, or owners who prefer it): a
 * single-use link emailed to the account's address. The link only works in the browser that holds the pending link's
 * cookie. Otherwise whoever controls an upstream account claiming someone's address could ask for the email and wait
 * for the real owner to click it in their own browser, and their identity would be linked to the owner's account.
 */
const EMAIL_LINK_TTL_SECONDS = 900;

export async function sendLinkEmail(
  ctx: AppContext,
  log: Logger,
  input: { pendingCookie: string | undefined; meta: RequestMeta },
): Promise<{ email: string }> {
  const pending = await pendingLink(ctx, input.pendingCookie);
  if (!pending) throw new AppError("FEDERATION_STATE_INVALID");
  const now = ctx.clock.now();
  const token = randomToken();
  await insertFlow(ctx.db, {
    tokenHash: sha256(token),
    purpose: "email_link",
    providerId: pending.provider.id,
    userId: pending.user.id,
    data: { pendingHash: pending.flow.tokenHash },
    createdAt: now,
    expiresAt: addSeconds(now, EMAIL_LINK_TTL_SECONDS),
  });
  const url = new URL("/federation/link/email", `${ctx.config.issuer}/`);
  url.searchParams.set("token", token);
  const product = ctx.config.mail.fromName;
  const { t, locale } = translator(emailLocale(pending.user.locale, input.meta.locale));
  const provider = pending.provider.displayName;
  const content = {
    subject: t("Link your {provider} sign-in to {product}", { provider, product }),
    intro: t(
      "Someone asked to link a {provider} sign-in to your {product} account ({email}). If it was you, open this link in the same browser to confirm.",
      { provider, product, email: pending.user.email },
    ),
    action: { label: t("Link {provider}", { provider }), url: url.toString() },
    outro: t("The link works once and expires in 15 minutes. If it was not you, ignore this email: nothing is linked."),
  };
  const text = [content.intro, `${content.action.label}:\n${content.action.url}`, content.outro, `— ${product}`].join(
    "\n\n",
  );
  const html = renderView("emails/account", { ...content, product, locale, t });
  sendInBackground(
    ctx.mailer,
    { to: pending.user.email, subject: content.subject, text, html, kind: "federation_link" },
    log,
  );
  await audit(ctx.db, input.meta, {
    event: "user.identity_link_email_sent",
    outcome: "success",
    userId: pending.user.id,
    details: { provider: pending.provider.slug },
  });
  return { email: pending.user.email };
}

/** Whether an emailed token is live (for the confirmation page); never spends it. */
export async function emailLinkIsLive(ctx: AppContext, token: string | undefined): Promise<boolean> {
  if (!token || token.length > 200) return false;
  return Boolean(await findLiveFlow(ctx.db, sha256(token), "email_link", ctx.clock.now()));
}

/** Spends the emailed token and the pending link (same browser only), links the identity, and signs the account in. */
export async function confirmEmailLink(
  ctx: AppContext,
  input: {
    token: string | undefined;
    pendingCookie: string | undefined;
    meta: RequestMeta;
    existing: SessionRow | null;
  },
): Promise<{
  outcome: Exclude<FederatedOutcome, { kind: "pending_link" | "linked" }>;
  continuation: { returnTo?: string | undefined; clientId?: string | undefined };
}> {
  const invalid = () => new AppError("FEDERATION_STATE_INVALID");
  if (!input.token || input.token.length > 200) throw invalid();
  const pending = await pendingLink(ctx, input.pendingCookie);
  const emailed = await findLiveFlow(ctx.db, sha256(input.token), "email_link", ctx.clock.now());
  const pendingHash = (emailed?.data as { pendingHash?: string } | undefined)?.pendingHash ?? "";
  if (!pending || !emailed || !safeEqual(pendingHash, pending.flow.tokenHash)) throw invalid();
  const now = ctx.clock.now();
  if (!(await consumeFlow(ctx.db, emailed.tokenHash, "email_link", now))) throw invalid();
  if (!(await consumeFlow(ctx.db, pending.flow.tokenHash, "pending_link", now))) throw invalid();
  if (pending.user.disabledAt) throw new AppError("ACCOUNT_DISABLED");
  await link(ctx, pending.provider, pending.user.id, pending.profile, input.meta, "email");
  const outcome = await signInOrSecondFactor(
    ctx,
    pending.user,
    pending.provider,
    ["fed", pending.provider.slug],
    input,
    pending.continuation,
  );
  return { outcome, continuation: pending.continuation };
}
