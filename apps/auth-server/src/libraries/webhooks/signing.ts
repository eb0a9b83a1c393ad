import { createHmac, randomBytes } from "node:crypto";

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com, spec/standard-webhooks.md): the secret is `whsec_`
 * followed by base64 of 24–64 random bytes; the signature is `v1,` + base64 of HMAC-SHA256, keyed with the decoded
 * secret bytes, over `${webhook-id}.${webhook-timestamp}.${body}`, where the timestamp is integer Unix seconds.
 */
export const SECRET_PREFIX = "whsec_";

/** A new signing secret: 32 random bytes. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString("base64");
}

export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, "base64");
}

export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", secretKey(secret)).update(`${id}.${timestampSeconds}.${body}`, "utf8").digest();
  return `v1,${mac.toString("base64")}`;
}

/**
 * The headers of one delivery attempt: the id stays the same on every retry, the timestamp is the attempt's. With
 * several secrets (the overlap after a rotation: current first, then the previous one) `webhook-signature` is their
 * space-separated list, as Standard Webhooks allows: a receiver verifies if any one matches its secret.
 */
export function webhookHeaders(
  secrets: string | readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  const list = typeof secrets === "string" ? [secrets] : secrets;
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": list.map((secret) => signWebhook(secret, id, timestampSeconds, body)).join(" "),
  };
}
