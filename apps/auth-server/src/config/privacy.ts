import { z } from "zod";
import { type Env, field, int, url } from "./env.ts";

/** Privacy (issue #16): re-authentication window, audit retention of personal data, terms and privacy versions. */
export interface PrivacyConfig {
  /**
   * A sign-in this recent counts as re-authentication for changing a factor or exporting data (ASVS 7.5.1); older
   * sessions must type the password (or a code) again.
   */
  reauthWindowSeconds: number;
  /** Audit events older than this lose the email, IP and user agent (sweeper pass); 0 keeps them. */
  auditPiiRetentionDays: number;
  /** The terms of service to accept (null: none configured, no checkbox and no interstitial). */
  terms: { version: string; url: string } | null;
  /** The privacy notice to accept, likewise. */
  privacy: { version: string; url: string } | null;
}

const version = z.string().trim().min(1).max(64);

function document(env: Env, name: "TERMS" | "PRIVACY", problems: string[]): { version: string; url: string } | null {
  const v = field(env, `${name}_VERSION`, version.optional(), problems);
  const u = field(env, `${name}_URL`, url.optional(), problems);
  if (Boolean(v) !== Boolean(u)) {
    problems.push(`${name}_VERSION / ${name}_URL: set both or neither`);
    return null;
  }
  return v && u ? { version: v, url: u } : null;
}

export function privacyConfig(env: Env, problems: string[]): PrivacyConfig {
  return {
    reauthWindowSeconds: field(env, "REAUTH_WINDOW_SECONDS", int(0, 86400).default(300), problems) ?? 300,
    auditPiiRetentionDays: field(env, "AUDIT_PII_RETENTION_DAYS", int(0, 36500).default(90), problems) ?? 90,
    terms: document(env, "TERMS", problems),
    privacy: document(env, "PRIVACY", problems),
  };
}
