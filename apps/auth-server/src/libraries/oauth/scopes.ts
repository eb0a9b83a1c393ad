import { OAuthError } from "../../errors/index.ts";
import type { ClientRow } from "../clients/index.ts";
import { splitScope } from "./params.ts";

/** Scopes Tessera knows; a client may be allowed a subset (and custom scopes registered for it). */
export const STANDARD_SCOPES = ["openid", "profile", "email", "offline_access", "roles"] as const;

/**
 * Scopes every client may ask for whatever its registration lists: `roles` releases only what the user may do in
 * that same app (its own roles and permissions) and what they own there, so no client needs an admin's permission
 * for it, and the SDK asks for it by default.
 */
const ALWAYS_ALLOWED: readonly string[] = ["roles"];

/**
 * The scopes granted for a request: `openid` must be present (Tessera is an OpenID Provider; every sign-in yields an
 * ID token); any other value that is unknown or not allowed for the client is ignored (OIDC Core 3.1.2.1, RFC 6749
 * 3.3: the server may grant less than asked, and the token response's `scope` says what was granted).
 */
export function checkScope(client: ClientRow, requested: string | undefined): string[] {
  const scopes = splitScope(requested);
  if (!scopes.includes("openid")) throw new OAuthError("invalid_scope", "The openid scope is required.");
  return scopes.filter((s) => client.allowedScopes.includes(s) || ALWAYS_ALLOWED.includes(s));
}

/** A refresh may narrow the scope (RFC 6749 6) but never widen it. */
export function narrowScope(granted: string[], requested: string | undefined): string[] {
  if (requested === undefined) return granted;
  const scopes = splitScope(requested);
  const extra = scopes.filter((s) => !granted.includes(s));
  if (extra.length) throw new OAuthError("invalid_scope", "The requested scope exceeds the scope originally granted.");
  if (!scopes.includes("openid")) throw new OAuthError("invalid_scope", "The openid scope is required.");
  return scopes;
}
