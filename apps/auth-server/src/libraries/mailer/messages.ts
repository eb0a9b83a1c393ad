import type { Config } from "../../config/index.ts";
import { renderView } from "../../views/index.ts";
import type { MailMessage } from "./types.ts";

export type AccountEmail =
  | {
      kind: "verify_email";
      to: string;
      token: string;
      continuation?: { returnTo?: string | undefined; clientId?: string | undefined } | undefined;
    }
  | { kind: "change_email"; to: string; token: string }
  | {
      kind: "reset_password";
      to: string;
      token: string;
      continuation?: { returnTo?: string | undefined; clientId?: string | undefined } | undefined;
    }
  | { kind: "registration_attempt"; to: string }
  | { kind: "email_changed"; to: string }
  | { kind: "password_changed"; to: string }
  | { kind: "account_locked"; to: string; until: Date }
  | { kind: MfaChange; to: string };

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
  const content = contentFor(config, email);
  const text = [
    content.intro,
    content.action ? `${content.action.label}:\n${content.action.url}` : "",
    content.outro,
    `— ${config.mail.fromName}`,
  ]
    .filter(Boolean)
    .join("\n\n");
  const html = renderView("emails/account", { ...content, product: config.mail.fromName });
  return { to: email.to, subject: content.subject, text, html, kind: email.kind };
}

function link(config: Config, path: string, params: Record<string, string | undefined>): string {
  const url = new URL(path, `${config.issuer}/`);
  for (const [key, value] of Object.entries(params)) if (value) url.searchParams.set(key, value);
  return url.toString();
}

function minutes(seconds: number): string {
  return seconds >= 7200 && seconds % 3600 === 0 ? `${seconds / 3600} hours` : `${Math.round(seconds / 60)} minutes`;
}

/** `2026-11-30 21:45 UTC` */
const utcMinute = (at: Date) => `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;

function contentFor(config: Config, email: AccountEmail): Content {
  const product = config.mail.fromName;
  const verifyTtl = minutes(config.tokens.emailVerificationTtlSeconds);
  switch (email.kind) {
    case "verify_email":
      return {
        subject: `Confirm your email address for ${product}`,
        intro: `Welcome to ${product}. Confirm that ${email.to} is your email address to finish setting up your account.`,
        action: {
          label: "Confirm my email address",
          url: link(config, "/verify-email", {
            token: email.token,
            return_to: email.continuation?.returnTo,
            client_id: email.continuation?.clientId,
          }),
        },
        outro: `The link works once and expires in ${verifyTtl}. If you did not create an account, ignore this email.`,
      };
    case "change_email":
      return {
        subject: `Confirm your new email address for ${product}`,
        intro: `Someone asked to use ${email.to} as the email address of a ${product} account.`,
        action: { label: "Use this email address", url: link(config, "/verify-email", { token: email.token }) },
        outro: `The link works once and expires in ${verifyTtl}. If this was not you, ignore this email; nothing changes.`,
      };
    case "reset_password":
      return {
        subject: `Reset your ${product} password`,
        intro: `Someone asked to reset the password of the ${product} account for ${email.to}.`,
        action: {
          label: "Choose a new password",
          url: link(config, "/reset-password", {
            token: email.token,
            return_to: email.continuation?.returnTo,
            client_id: email.continuation?.clientId,
          }),
        },
        outro:
          `The link works once and expires in ${minutes(config.tokens.passwordResetTtlSeconds)}. Resetting signs ` +
          "you out on every device. If you did not ask for this, ignore this email; your password stays the same.",
      };
    case "registration_attempt":
      return {
        subject: `Someone tried to create a ${product} account with your email`,
        intro:
          `Someone tried to create a new ${product} account with ${email.to}, but you already have one. ` +
          "If it was you, sign in instead; if you forgot your password, you can reset it.",
        action: { label: "Sign in", url: link(config, "/login", {}) },
        outro: "If it was not you, you can ignore this email: nothing was changed.",
      };
    case "email_changed":
      return {
        subject: `Your ${product} email address was changed`,
        intro: `The ${product} account that used ${email.to} now uses another email address.`,
        outro: "If you did not do this, reset your password right away and contact support.",
      };
    case "password_changed":
      return {
        subject: `Your ${product} password was changed`,
        intro: `The password of the ${product} account for ${email.to} was just changed.`,
        action: { label: "Reset your password", url: link(config, "/forgot-password", {}) },
        outro: "If you did not do this, reset your password right away.",
      };
    case "account_locked":
      // To the owner when failed sign-ins lock the account (never for unknown emails, though they lock the same):
      // when it unlocks, and that a reset link works during the lock.
      return {
        subject: `Sign-ins to your ${product} account are paused`,
        intro: `There were several failed attempts to sign in to your ${product} account, so we paused sign-ins with your password until ${utcMinute(email.until)}.`,
        action: { label: "Reset your password", url: link(config, "/forgot-password", {}) },
        outro:
          "If this was you, wait until then or reset your password now: a reset link works during the pause. If it was not you, your password was not accepted; choosing a new, unique one keeps it that way.",
      };
    case "mfa_enabled":
    case "mfa_disabled":
    case "mfa_recovery_codes":
      return {
        subject: `${MFA_CHANGES[email.kind].subject} · ${product}`,
        intro: MFA_CHANGES[email.kind].intro,
        action: { label: "Review your account", url: link(config, "/account/mfa", {}) },
        outro: "If this was not you, reset your password now and review where you are signed in.",
      };
  }
}
