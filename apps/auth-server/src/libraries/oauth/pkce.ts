import { createHash } from "node:crypto";
import { safeEqual } from "../crypto.ts";

/** RFC 7636 4.1/4.2: verifier and S256 challenge alphabets and lengths. */
export const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** BASE64URL(SHA-256(verifier)) is always 43 characters. */
export const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export function s256(verifier: string): string {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

/** True when the verifier hashes to the stored S256 challenge (constant-time comparison). */
export function verifyPkce(challenge: string, verifier: string): boolean {
  return safeEqual(s256(verifier), challenge);
}
