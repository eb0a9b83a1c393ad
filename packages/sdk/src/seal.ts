import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/**
 * Derives a purpose-bound 32-byte key from the app secret (HKDF-SHA256), so the key that encrypts the login
 * transaction cookie is never the key that signs access JWTs.
 * @internal
 *
 * @example
 * ```ts
 * const key = deriveKey(appSecret, "login-transaction"); // internal
 * ```
 */
export function deriveKey(secret: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), `tessera-sdk/${purpose}`, 32));
}

/**
 * AES-256-GCM: encrypts and authenticates a small JSON value for a cookie (`iv.ciphertext+tag`, base64url). The PKCE
 * verifier inside must stay secret, so this is sealed, not merely signed.
 * @internal
 *
 * @example
 * ```ts
 * const cookieValue = seal(key, { state, nonce }); // internal
 * ```
 */
export function seal(key: Buffer, value: unknown): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final(), cipher.getAuthTag()]);
  return `${iv.toString("base64url")}.${body.toString("base64url")}`;
}

/**
 * Opens a value made by {@link seal}; null when it was tampered with, made with another key, or malformed.
 * @internal
 *
 * @example
 * ```ts
 * const value = unseal(key, cookieValue); // null when tampered with
 * ```
 */
export function unseal(key: Buffer, sealed: string | undefined): unknown {
  if (!sealed || sealed.length > 4096) return null;
  const [iv, body] = sealed.split(".");
  if (!iv || !body) return null;
  try {
    const ivBytes = Buffer.from(iv, "base64url");
    const bytes = Buffer.from(body, "base64url");
    if (ivBytes.length !== 12 || bytes.length < 17) return null;
    const decipher = createDecipheriv("aes-256-gcm", key, ivBytes);
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    const plain = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]);
    return JSON.parse(plain.toString("utf8"));
  } catch {
    return null;
  }
}
