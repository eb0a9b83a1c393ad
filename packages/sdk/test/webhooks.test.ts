import { createHmac, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTessera,
  MemoryRevokedSessionStore,
  TesseraConfigError,
  TesseraError,
  type TesseraOptions,
  type WebhookEvent,
} from "../src/index.ts";
import { type StubIssuer, startStubIssuer } from "./stub-issuer.ts";

/**
 * tessera.webhooks.verify against the Standard Webhooks scheme, signed here independently of Tessera's signer:
 * `v1,` + base64 HMAC-SHA256 (key = the base64-decoded part of `whsec_…`) over `id.timestamp.body`.
 */
let clock = Date.UTC(2026, 10, 21, 12, 0, 0);
const now = () => clock;
let stub: StubIssuer;
const secret = `whsec_${randomBytes(32).toString("base64")}`;

beforeAll(async () => {
  stub = await startStubIssuer(now);
});
afterAll(async () => stub.close());

function tessera(extra: Partial<TesseraOptions> = {}, webhooks: Partial<NonNullable<TesseraOptions["webhooks"]>> = {}) {
  return createTessera({
    issuer: stub.issuer,
    clientId: stub.clientId,
    clientSecret: stub.clientSecret,
    appSecret: randomBytes(32),
    redirectUri: "http://127.0.0.1:4001/auth/callback",
    cookies: { secure: false },
    now,
    webhooks: { secret, ...webhooks },
    ...extra,
  });
}

function sign(id: string, timestamp: number, body: string, key = secret): string {
  const raw = Buffer.from(key.slice("whsec_".length), "base64");
  return `v1,${createHmac("sha256", raw).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

let n = 0;
function delivery(
  type: string,
  data: Record<string, unknown>,
  options: { id?: string; timestamp?: number; key?: string } = {},
) {
  const id = options.id ?? `0e3c5a7e-0000-4000-8000-${String(++n).padStart(12, "0")}`;
  const timestamp = options.timestamp ?? Math.floor(clock / 1000);
  const body = JSON.stringify({ type, timestamp: new Date(clock).toISOString(), data });
  return {
    id,
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": sign(id, timestamp, body, options.key),
    },
    body,
  };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TesseraError);
  return (error as TesseraError).code;
}

describe("tessera.webhooks.verify", () => {
  it("accepts a correctly signed event (headers object, Buffer body, or a web Request)", async () => {
    const t = tessera();
    const d = delivery("user.updated", { sub: "u1" });
    const event = await t.webhooks.verify({ headers: d.headers, body: Buffer.from(d.body) });
    expect(event).toEqual({
      id: d.id,
      type: "user.updated",
      timestamp: new Date(clock).toISOString(),
      data: { sub: "u1" },
    });
    const e = delivery("user.updated", { sub: "u2" });
    const request = new Request("http://app.test/hooks", { method: "POST", headers: e.headers, body: e.body });
    expect((await t.webhooks.verify(request)).id).toBe(e.id);
  });

  it("refuses a forged signature: another secret, a changed body, a changed id, a missing header", async () => {
    const t = tessera();
    const other = delivery("roles.changed", { sub: "u1" }, { key: `whsec_${randomBytes(32).toString("base64")}` });
    expect(await refusal(t.webhooks.verify(other))).toBe("WEBHOOK_SIGNATURE_INVALID");
    const d = delivery("roles.changed", { sub: "u1" });
    const tampered = { headers: d.headers, body: d.body.replace("u1", "u2") };
    expect(await refusal(t.webhooks.verify(tampered))).toBe("WEBHOOK_SIGNATURE_INVALID");
    const renamed = { headers: { ...d.headers, "webhook-id": `${d.id.slice(0, -1)}f` }, body: d.body };
    expect(await refusal(t.webhooks.verify(renamed))).toBe("WEBHOOK_SIGNATURE_INVALID");
    const unsigned = { headers: { ...d.headers, "webhook-signature": undefined }, body: d.body };
    expect(await refusal(t.webhooks.verify(unsigned))).toBe("WEBHOOK_SIGNATURE_INVALID");
    const v1a = {
      headers: { ...d.headers, "webhook-signature": d.headers["webhook-signature"].replace("v1,", "v1a,") },
      body: d.body,
    };
    expect(await refusal(t.webhooks.verify(v1a))).toBe("WEBHOOK_SIGNATURE_INVALID");
    // The genuine one still passes (nothing above was remembered), also among several signatures (key rotation).
    const rotated = {
      headers: { ...d.headers, "webhook-signature": `v1,AAAA ${d.headers["webhook-signature"]}` },
      body: d.body,
    };
    expect((await t.webhooks.verify(rotated)).id).toBe(d.id);
  });

  it("refuses a replayed id, even with a fresh timestamp and a valid signature", async () => {
    const t = tessera();
    const d = delivery("user.updated", { sub: "u1" });
    await t.webhooks.verify(d);
    expect(await refusal(t.webhooks.verify(d))).toBe("WEBHOOK_REPLAYED");
    clock += 60_000;
    const retry = delivery("user.updated", { sub: "u1" }, { id: d.id });
    const error = await t.webhooks.verify(retry).catch((e: TesseraError) => e);
    expect((error as TesseraError).code).toBe("WEBHOOK_REPLAYED");
    expect((error as TesseraError).status).toBe(200);
  });

  it("refuses a timestamp outside the window (default 5 minutes), either way", async () => {
    const t = tessera();
    const seconds = Math.floor(clock / 1000);
    const stale = delivery("user.updated", { sub: "u1" }, { timestamp: seconds - 301 });
    expect(await refusal(t.webhooks.verify(stale))).toBe("WEBHOOK_TIMESTAMP_INVALID");
    const future = delivery("user.updated", { sub: "u1" }, { timestamp: seconds + 301 });
    expect(await refusal(t.webhooks.verify(future))).toBe("WEBHOOK_TIMESTAMP_INVALID");
    const edge = delivery("user.updated", { sub: "u1" }, { timestamp: seconds - 300 });
    expect((await t.webhooks.verify(edge)).id).toBe(edge.id);
    const narrow = tessera({}, { toleranceSeconds: 10 });
    const old = delivery("user.updated", { sub: "u1" }, { timestamp: seconds - 11 });
    expect(await refusal(narrow.webhooks.verify(old))).toBe("WEBHOOK_TIMESTAMP_INVALID");
  });

  it("session.ended feeds the revoked-session store; user.deleted calls onUserDeleted (a throw is retried)", async () => {
    const revokedSessions = new MemoryRevokedSessionStore({ now });
    const deleted: WebhookEvent[] = [];
    let fail = true;
    const t = tessera(
      { revokedSessions },
      {
        onUserDeleted: (sub, event) => {
          if (fail) throw new Error("database down");
          deleted.push(event);
          expect(sub).toBe("u9");
        },
      },
    );
    await t.webhooks.verify(delivery("session.ended", { sub: "u9", sid: "s-123" }));
    expect(revokedSessions.has("s-123")).toBe(true);
    const d = delivery("user.deleted", { sub: "u9" });
    await expect(t.webhooks.verify(d)).rejects.toThrow("database down");
    fail = false;
    await t.webhooks.verify(d); // Tessera's retry: the id was not remembered, the handler runs again
    expect(deleted.map((e) => e.id)).toEqual([d.id]);
  });

  it("keeps delivered ids in a pluggable store", async () => {
    const seen = new Set<string>();
    const deliveredIds = { add: async (id: string) => void seen.add(id), has: async (id: string) => seen.has(id) };
    const a = tessera({}, { deliveredIds });
    const b = tessera({}, { deliveredIds }); // another instance of the app
    const d = delivery("user.updated", { sub: "u1" });
    await a.webhooks.verify(d);
    expect(await refusal(b.webhooks.verify(d))).toBe("WEBHOOK_REPLAYED");
  });

  it("is configured with a whsec_ secret; a parsed body is a programming error", async () => {
    expect(() => tessera({}, { secret: "plain" })).toThrow(TesseraConfigError);
    expect(() => tessera({}, { secret: "whsec_c2hvcnQ=" })).toThrow(TesseraConfigError);
    const d = delivery("user.updated", { sub: "u1" });
    await expect(
      tessera().webhooks.verify({ headers: d.headers, body: JSON.parse(d.body) as unknown as string }),
    ).rejects.toThrow(TesseraConfigError);
    const none = createTessera({
      issuer: stub.issuer,
      clientId: stub.clientId,
      clientSecret: stub.clientSecret,
      appSecret: randomBytes(32),
      redirectUri: "http://127.0.0.1:4001/auth/callback",
      cookies: { secure: false },
    });
    await expect(none.webhooks.verify(d)).rejects.toThrow(TesseraConfigError);
  });
});
