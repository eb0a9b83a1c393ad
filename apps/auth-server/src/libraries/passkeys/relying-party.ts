import type { Config } from "../../config/index.ts";

/**
 * Tessera as a WebAuthn relying party. The RP ID is the issuer's host name and the only accepted origin is the
 * issuer's origin: both come from the configured `ISSUER`, never from a request's Host header, so a credential made
 * for `https://id.example.com` signs for nothing else (the browser scopes it to that RP ID, and the server checks
 * `clientDataJSON.origin` and the RP ID hash in the authenticator data).
 */
export interface RelyingParty {
  id: string;
  origin: string;
  name: string;
}

export function relyingParty(config: Config): RelyingParty {
  const issuer = new URL(config.issuer);
  return { id: issuer.hostname, origin: issuer.origin, name: config.mail.fromName };
}

/** How long a ceremony's challenge lives: the browser's own prompt times out after `CEREMONY_TIMEOUT_MS`. */
export const CHALLENGE_TTL_SECONDS = 300;
export const CEREMONY_TIMEOUT_MS = 120_000;

/**
 * The `amr` values (RFC 8176) of a sign-in with a passkey:
 * - `hwk` for a device-bound key (backup state BS=0: the private key never leaves the authenticator, a security key
 *   or a platform authenticator's secure element), `swk` for a synced passkey (BS=1: the key is copied through the
 *   vendor's cloud, so it is software-protected at some point). Without attestation this is the best evidence the
 *   authenticator gives; it is what it claims, not what it proves.
 * - `user` when the authenticator verified the user (UV flag: PIN or biometric).
 * - `mfa` when two factors were shown: a password and the key, or the key and its user verification (possession
 *   plus knowledge or inherence, as NIST SP 800-63B counts a multi-factor cryptographic authenticator).
 */
export function passkeyAmr(input: { backedUp: boolean; userVerified: boolean; afterPassword: boolean }): string[] {
  const amr = input.afterPassword ? ["pwd"] : [];
  amr.push(input.backedUp ? "swk" : "hwk");
  if (input.userVerified) amr.push("user");
  if (input.afterPassword || input.userVerified) amr.push("mfa");
  return amr;
}
