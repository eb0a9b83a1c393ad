import type { Config } from "../../config/index.ts";
import { isLocale, type Locale, type Translator, translator } from "../../i18n/index.ts";
import { renderView } from "../../views/index.ts";
import type { RequestMeta } from "../audit.ts";
import type { MailMessage } from "./types.ts";

type Continuation = { returnTo?: string | undefined; clientId?: string | undefined } | undefined;

export type AccountEmail = (
  | { kind: "verify_email"; to: string; token: string; continuation?: Continuation }
  | { kind: "change_email"; to: string; token: string }
  | { kind: "reset_password"; to: string; token: string; continuation?: Continuation }
  | { kind: "registration_attempt"; to: string }
  | { kind: "email_changed"; to: string }
  | { kind: "password_changed"; to: string }
  | { kind: "account_locked"; to: string; until: Date }
  | { kind: MfaChange; to: string }
) & {
  /** The recipient's saved language (users.locale). */
  locale?: string | null | undefined;
  /** The language of the request that sends it (RequestMeta `locale`), used when the recipient saved none. */
  requestLocale?: Locale | undefined;
};

/** The owner's second factor changed (so an unexpected change is noticed). */
export type MfaChange = keyof typeof MFA_CHANGES;

const MFA_CHANGES = {
  mfa_enabled: {
    subject: "Two-step verification is on",
    intro: "Two-step verification was turned on for your account: signing in now also asks for a code from your app.",
  },
  mfa_disabled: {
    subject: "Two-step verification is off",
    intro: "Two-step verification was turned off for your account: signing in now needs only your password.",
  },
  mfa_recovery_codes: {
    subject: "New recovery codes",
    intro: "New recovery codes were made for your account; the old ones no longer work.",
  },
} as const;

interface Content {
  subject: string;
  intro: string;
  action?: { label: string; url: string };
  outro: string;
}

/**
 * Builds every email Tessera sends (account links and notices, the lock notice, second-factor changes): the text and
 * the HTML part are assembled here and nowhere else. Every link comes from the configured ISSUER, never from a
 * request's Host header (a forged Host would otherwise put an attacker's domain in a reset link).
 */
export function accountEmail(config: Config, email: AccountEmail): MailMessage {
  const i18n = translator(emailLocale(email.locale, email.requestLocale));
  const content = contentFor(config, email, i18n);
  const text = [
    content.intro,
    content.action ? `${content.action.label}:\n${content.action.url}` : "",
    content.outro,
    `— ${config.mail.fromName}`,
  ]
    .filter(Boolean)
    .join("\n\n");
  const html = renderView("emails/account", {
    ...content,
    product: config.mail.fromName,
    locale: i18n.locale,
    t: i18n.t,
  });
  return { to: email.to, subject: content.subject, text, html, kind: email.kind };
}

/** `to` and the languages of an email to a user, sent while handling `meta`'s request. */
export function recipient(user: { email: string; locale: string | null }, meta?: RequestMeta) {
  return { to: user.email, locale: user.locale, requestLocale: meta?.locale };
}

/** An email's language: the recipient's saved one, else the request's, else English. */
export function emailLocale(saved: string | null | undefined, requestLocale: Locale | undefined): Locale {
  return isLocale(saved) ? saved : (requestLocale ?? "en");
}

function link(config: Config, path: string, params: Record<string, string | undefined>): string {
  const url = new URL(path, `${config.issuer}/`);
  for (const [key, value] of Object.entries(params)) if (value) url.searchParams.set(key, value);
  return url.toString();
}

function minutes(i18n: Translator, seconds: number): string {
  return seconds >= 7200 && seconds % 3600 === 0
    ? i18n.t("{n} hours", { n: seconds / 3600 })
    : i18n.t("{n} minutes", { n: Math.round(seconds / 60) });
}

function contentFor(config: Config, email: AccountEmail, i18n: Translator): Content {
  const { t } = i18n;
  const product = config.mail.fromName;
  const verifyTtl = minutes(i18n, config.tokens.emailVerificationTtlSeconds);
  switch (email.kind) {
    case "verify_email":
      return {
        subject: t("Confirm your email address for {product}", { product }),
        intro: t(
          "Welcome to {product}. Confirm that {email} is your email address to finish setting up your account.",
          {
            product,
            email: email.to,
          },
        ),
        action: {
          label: t("Confirm my email address"),
          url: link(config, "/verify-email", {
            token: email.token,
            return_to: email.continuation?.returnTo,
            client_id: email.continuation?.clientId,
          }),
        },
        outro: t("The link works once and expires in {ttl}. If you did not create an account, ignore this email.", {
          ttl: verifyTtl,
        }),
      };
    case "change_email":
      return {
        subject: t("Confirm your new email address for {product}", { product }),
        intro: t("Someone asked to use {email} as the email address of a {product} account.", {
          product,
          email: email.to,
        }),
        action: { label: t("Use this email address"), url: link(config, "/verify-email", { token: email.token }) },
        outro: t("The link works once and expires in {ttl}. If this was not you, ignore this email; nothing changes.", {
          ttl: verifyTtl,
        }),
      };
    case "reset_password":
      return {
        subject: t("Reset your {product} password", { product }),
        intro: t("Someone asked to reset the password of the {product} account for {email}.", {
          product,
          email: email.to,
        }),
        action: {
          label: t("Choose a new password"),
          url: link(config, "/reset-password", {
            token: email.token,
            return_to: email.continuation?.returnTo,
            client_id: email.continuation?.clientId,
          }),
        },
        outro: t(
          "The link works once and expires in {ttl}. Resetting signs you out on every device. If you did not ask for this, ignore this email; your password stays the same.",
          { ttl: minutes(i18n, config.tokens.passwordResetTtlSeconds) },
        ),
      };
    case "registration_attempt":
      return {
        subject: t("Someone tried to create a {product} account with your email", { product }),
        intro: t(
          "Someone tried to create a new {product} account with {email}, but you already have one. If it was you, sign in instead; if you forgot your password, you can reset it.",
          { product, email: email.to },
        ),
        action: { label: t("Sign in"), url: link(config, "/login", {}) },
        outro: t("If it was not you, you can ignore this email: nothing was changed."),
      };
    case "email_changed":
      return {
        subject: t("Your {product} email address was changed", { product }),
        intro: t("The {product} account that used {email} now uses another email address.", {
          product,
          email: email.to,
        }),
        outro: t("If you did not do this, reset your password right away and contact support."),
      };
    case "password_changed":
      return {
        subject: t("Your {product} password was changed", { product }),
        intro: t("The password of the {product} account for {email} was just changed.", { product, email: email.to }),
        action: { label: t("Reset your password"), url: link(config, "/forgot-password", {}) },
        outro: t("If you did not do this, reset your password right away."),
      };
    case "account_locked":
      // To the owner when failed sign-ins lock the account (never for unknown emails, though they lock the same):
      // when it unlocks, and that a reset link works during the lock.
      return {
        subject: t("Sign-ins to your {product} account are paused", { product }),
        intro: t(
          "There were several failed attempts to sign in to your {product} account, so we paused sign-ins with your password until {until}.",
          { product, until: i18n.date(email.until) },
        ),
        action: { label: t("Reset your password"), url: link(config, "/forgot-password", {}) },
        outro: t(
          "If this was you, wait until then or reset your password now: a reset link works during the pause. If it was not you, your password was not accepted; choosing a new, unique one keeps it that way.",
        ),
      };
    case "mfa_enabled":
    case "mfa_disabled":
    case "mfa_recovery_codes":
      return {
        subject: `${t(MFA_CHANGES[email.kind].subject)} · ${product}`,
        intro: t(MFA_CHANGES[email.kind].intro),
        action: { label: t("Review your account"), url: link(config, "/account/mfa", {}) },
        outro: t("If this was not you, reset your password now and review where you are signed in."),
      };
  }
}
