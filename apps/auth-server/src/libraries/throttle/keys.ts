import { createHmac } from "node:crypto";
import type { Config } from "../../config/index.ts";
import { ipBlock } from "../client-ip.ts";

/** What failed sign-ins are counted under: an HMAC of the normalized email, a user's code step, the IP's block. */

/**
 * The form every email takes, in the users table and before keying (trimmed, NFC, lower-cased). The account
 * schemas (libraries/accounts/schemas.ts) apply it to every email input.
 */
export const normalizeEmail = (email: string): string => email.trim().normalize("NFC").toLowerCase();

/** The derived key per master key (a sign-in keys its email two to three times). */
const derivedKeys = new WeakMap<Config, { masterKey: Config["masterKey"]; key: Buffer }>();

/** HMAC-SHA256 of the normalized email under a key derived from the master key. */
export function accountKey(config: Config, email: string): string {
  let derived = derivedKeys.get(config);
  if (!derived || derived.masterKey !== config.masterKey) {
    derived = {
      masterKey: config.masterKey,
      key: createHmac("sha256", config.masterKey).update("tessera/account-throttle/v1").digest(),
    };
    derivedKeys.set(config, derived);
  }
  return createHmac("sha256", derived.key).update(normalizeEmail(email)).digest("hex");
}

/**
 * The key counting wrong codes at the second sign-in step, per user. Separate from the password key: a lock from
 * password guesses must not stop the owner's code step, but wrong codes need their own delays and lock, or someone
 * holding the password could guess codes without end.
 */
export function secondFactorKey(config: Config, userId: string): string {
  return `otp:${accountKey(config, `user:${userId}`)}`;
}

/** The IP as counted: IPv6 addresses by their /64, the smallest block one customer usually gets. */
export const throttleIp = (ip: string | undefined): string => ipBlock(ip ?? "unknown");
