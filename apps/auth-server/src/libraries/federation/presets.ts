/**
 * OAuth 2.0 providers with a user endpoint, and Steam's OpenID 2.0 endpoint. Each preset names its endpoints (an
 * admin may override any of them per provider: GitHub Enterprise, or a test's local stub), its default scopes, and how
 * its user endpoint's answer maps to an upstream profile.
 */
export type PresetName = "github" | "discord" | "twitch";

export interface UpstreamProfile {
  subject: string;
  email: string | null;
  /** What the upstream says; believed only for providers marked trusted for email. */
  emailVerified: boolean;
  name: string | null;
}

export interface Preset {
  displayName: string;
  endpoints: { authorization: string; token: string; user: string; emails?: string };
  scopes: string[];
  /** Extra headers the user endpoint wants besides the bearer token. */
  userHeaders?: (clientId: string) => Record<string, string>;
  profile: (body: unknown) => UpstreamProfile | null;
}

const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const text = (v: unknown): string | null => (typeof v === "string" && v.length > 0 && v.length <= 320 ? v : null);
const id = (v: unknown): string | null =>
  typeof v === "number" && Number.isSafeInteger(v)
    ? String(v)
    : /^[0-9A-Za-z_-]{1,64}$/.test(String(v))
      ? String(v)
      : null;

export const PRESETS: Record<PresetName, Preset> = {
  github: {
    displayName: "GitHub",
    endpoints: {
      authorization: "https://github.com/login/oauth/authorize",
      token: "https://github.com/login/oauth/access_token",
      user: "https://api.github.com/user",
      // The profile's `email` is only the public one; /user/emails says which addresses are verified.
      emails: "https://api.github.com/user/emails",
    },
    scopes: ["read:user", "user:email"],
    userHeaders: () => ({ accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28" }),
    profile: (body) => {
      const b = obj(body);
      const subject = b.id === undefined ? null : id(b.id);
      return subject ? { subject, email: null, emailVerified: false, name: text(b.name) ?? text(b.login) } : null;
    },
  },
  discord: {
    displayName: "Discord",
    endpoints: {
      authorization: "https://discord.com/oauth2/authorize",
      token: "https://discord.com/api/oauth2/token",
      user: "https://discord.com/api/users/@me",
    },
    scopes: ["identify", "email"],
    profile: (body) => {
      const b = obj(body);
      const subject = b.id === undefined ? null : id(b.id);
      if (!subject) return null;
      return {
        subject,
        email: text(b.email),
        emailVerified: b.verified === true,
        name: text(b.global_name) ?? text(b.username),
      };
    },
  },
  twitch: {
    displayName: "Twitch",
    endpoints: {
      authorization: "https://id.twitch.tv/oauth2/authorize",
      token: "https://id.twitch.tv/oauth2/token",
      user: "https://api.twitch.tv/helix/users",
    },
    scopes: ["user:read:email"],
    userHeaders: (clientId) => ({ "client-id": clientId }),
    profile: (body) => {
      const data = obj(body).data;
      const b = obj(Array.isArray(data) ? data[0] : undefined);
      const subject = b.id === undefined ? null : id(b.id);
      // Twitch only hands out confirmed addresses to apps, but says so nowhere in the answer: not verified here.
      return subject
        ? { subject, email: text(b.email), emailVerified: false, name: text(b.display_name) ?? text(b.login) }
        : null;
    },
  },
};

/** GitHub's /user/emails: the primary address, verified or not. */
export function githubPrimaryEmail(body: unknown): { email: string; verified: boolean } | null {
  if (!Array.isArray(body)) return null;
  const primary = body.map(obj).find((e) => e.primary === true && text(e.email));
  return primary ? { email: String(primary.email), verified: primary.verified === true } : null;
}

/** Steam's OpenID 2.0 provider endpoint. */
export const STEAM_ENDPOINT = "https://steamcommunity.com/openid/login";
/** A Steam claimed_id: the 17-digit SteamID64 under Steam's id URL (https; http was used by old clients). */
export const STEAM_CLAIMED_ID = /^https?:\/\/steamcommunity\.com\/openid\/id\/(7656119\d{10})$/;
