import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TesseraConfigError } from "../src/index.ts";
import { StaleClaims, TesseraWebhooks, type WebhookReactions } from "../src/webhooks.ts";

/**
 * The edges of webhook verification the end-to-end suite (webhooks.test.ts) does not reach: a fetch `Request`, a
 * malformed timestamp, signed bodies that are not events, the tolerance's bounds, and the stale-claims marks.
 */
const secret = `whsec_${randomBytes(32).toString("base64")}`;
const key = Buffer.from(secret.slice(6), "base64");
const at = Date.UTC(2026, 10, 21, 12, 0, 0);
const reacted: string[] = [];
const reactions: WebhookReactions = {
  sessionEnded: async (sid, sub) => reacted.push(`ended ${sid} ${sub}`),
  claimsChanged: (sub) => {
    reacted.push(`claims ${sub}`);
  },
};
const webhooks = (tolerance?: number) =>
  new TesseraWebhooks(
    { secret, ...(tolerance === undefined ? {} : { toleranceSeconds: tolerance }) },
    reactions,
    () => at,
  );

function signed(body: string, id = `msg_${randomBytes(6).toString("hex")}`, timestamp = String(at / 1000)) {
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": `v1,${signature}` };
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => "accepted",
    (error: { code?: string }) => error.code,
  );

describe("TesseraWebhooks edges", () => {
  it("accepts a fetch Request as is, reading its headers and raw body", async () => {
    const body = JSON.stringify({ type: "roles.changed", timestamp: "t", data: { sub: "user-7" } });
    const request = new Request("https://app.example.com/webhooks/tessera", {
      method: "POST",
      headers: signed(body),
      body,
    });
    const event = await webhooks().verify(request);
    expect(event).toMatchObject({ type: "roles.changed", data: { sub: "user-7" } });
    expect(reacted).toContain("claims user-7");
  });

  it("a timestamp that is not whole seconds is WEBHOOK_TIMESTAMP_INVALID, before any signature work", async () => {
    const body = JSON.stringify({ type: "user.updated", data: { sub: "u" } });
    for (const timestamp of ["1.5", "-1", "abc", "1e9"]) {
      expect(await codeOf(webhooks().verify({ headers: signed(body, "msg_ts", timestamp), body }))).toBe(
        "WEBHOOK_TIMESTAMP_INVALID",
      );
    }
  });

  it("a correctly signed body that is not an event (not JSON, no type, no data, no sub) is refused", async () => {
    for (const body of [
      "not json",
      "null",
      '{"data":{"sub":"u"}}',
      '{"type":"user.updated"}',
      '{"type":"x","data":{}}',
    ]) {
      expect(await codeOf(webhooks().verify({ headers: signed(body), body }))).toBe("WEBHOOK_SIGNATURE_INVALID");
    }
  });

  it("toleranceSeconds must be a whole number from 1 to 3600", () => {
    for (const tolerance of [0, 3601, 1.5, Number.NaN]) {
      expect(() => webhooks(tolerance)).toThrow(TesseraConfigError);
      expect(() => webhooks(tolerance)).toThrow("webhooks.toleranceSeconds: must be an integer from 1 to 3600");
    }
    expect(() => webhooks(3600)).not.toThrow();
  });
});

describe("StaleClaims", () => {
  it("marks a user's JWTs issued up to the change as stale until a refresh started after it", () => {
    const claims = new StaleClaims();
    expect(claims.isStale("ada", 100)).toBe(false);
    claims.mark("ada", 200_000);
    expect(claims.isStale("ada", 199)).toBe(true);
    expect(claims.isStale("ada", 200)).toBe(true);
    expect(claims.isStale("ada", 201)).toBe(false);
    expect(claims.isStale("bob", 100)).toBe(false);
    claims.refreshed("ada", 199_000); // started before the change: may not have seen it
    expect(claims.isStale("ada", 150)).toBe(true);
    claims.refreshed("ada", 200_000);
    expect(claims.isStale("ada", 150)).toBe(false);
  });

  it("is bounded: the oldest mark goes first", () => {
    const claims = new StaleClaims(2);
    claims.mark("a", 1000);
    claims.mark("b", 1000);
    claims.mark("c", 1000);
    expect(claims.isStale("a", 1)).toBe(false);
    expect(claims.isStale("b", 1)).toBe(true);
    expect(claims.isStale("c", 1)).toBe(true);
    claims.mark("b", 2000); // marked again: now the newest
    claims.mark("d", 1000);
    expect(claims.isStale("c", 1)).toBe(false);
    expect(claims.isStale("b", 1)).toBe(true);
  });
});
