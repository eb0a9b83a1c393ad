import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { TesseraWebhooks } from "@tessera/sdk";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { updateProfile } from "../../src/libraries/accounts/profile.ts";
import { drainWebhooks } from "../../src/libraries/jobs/webhooks.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, registerClient, sessionCookie, tokensFor } from "../oauth/helpers.ts";
import { seedAdmin, setWebhook } from "./helpers.ts";

/**
 * Dual signatures after a secret rotation (#16): for the overlap (WEBHOOK_SECRET_OVERLAP_SECONDS, default 24 h, or the
 * rotation's own `overlap_seconds`), deliveries carry
 * `v1,<new> v1,<old>`, so a receiver still holding the old secret and one already holding the new both verify; after
 * the overlap only the new secret signs. Checked with the SDK's verifier and with `standardwebhooks` (the Standard
 * Webhooks reference library for TypeScript, a devDependency only for this: it proves any consumer of the convention,
 * not only our SDK, accepts the signature list), each holding one secret.
 */
const META = { ip: "127.0.0.1", userAgent: "vitest" };
const SECRET_ROTATION_OVERLAP_SECONDS = 86400;

let t: TestApp;
let admin: string;
let server: Server;
let url: string;
const captured: Array<{ headers: IncomingHttpHeaders; body: Buffer }> = [];

beforeAll(async () => {
  t = await buildOAuthApp();
  admin = (await seedAdmin(t.app)).authorization;
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      captured.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await t.close();
});

const sdk = (secret: string) =>
  new TesseraWebhooks({ secret }, { sessionEnded: async () => {}, claimsChanged: () => {} }, () =>
    t.clock.now().getTime(),
  );

/** Verifies a captured delivery with the SDK holding `secret`: the event type, or the error code. */
async function verifyWith(secret: string, delivery: { headers: IncomingHttpHeaders; body: Buffer }) {
  try {
    return (await sdk(secret).verify({ headers: delivery.headers, body: delivery.body })).type;
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

/** The same with the reference library (its clock is Date.now: set to the test clock's time for the call). */
function referenceVerify(secret: string, delivery: { headers: IncomingHttpHeaders; body: Buffer }) {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(t.clock.now());
  try {
    const headers = Object.fromEntries(Object.entries(delivery.headers).map(([k, v]) => [k, String(v)]));
    const payload = new Webhook(secret).verify(delivery.body.toString("utf8"), headers) as { type: string };
    return payload.type;
  } catch (error) {
    return (error as Error).message;
  } finally {
    vi.useRealTimers();
  }
}

async function emitAndDeliver(user: Awaited<ReturnType<typeof createUser>>, name: string) {
  await updateProfile(t.app.ctx, { user, displayName: name, meta: META });
  const before = captured.length;
  const report = await drainWebhooks(t.app.ctx);
  expect(report.delivered).toBe(1);
  expect(captured).toHaveLength(before + 1);
  return captured[captured.length - 1]!;
}

describe("secret rotation", () => {
  it("signs with both secrets during the overlap, then with the new one only", async () => {
    const client = await registerClient(t.app);
    const oldSecret = await setWebhook(t.app, admin, client.clientId, { url, events: ["user.updated"] });
    const user = await createUser(t.app);
    await tokensFor(t.app, client, (await sessionCookie(t.app, user)).cookie);

    const beforeRotation = await emitAndDeliver(user, "Before");
    expect(String(beforeRotation.headers["webhook-signature"]).split(" ")).toHaveLength(1);
    expect(await verifyWith(oldSecret, beforeRotation)).toBe("user.updated");

    const rotated = await t.app.inject({
      method: "POST",
      url: `/admin/api/v1/clients/${client.clientId}/webhook/rotate-secret`,
      headers: { authorization: admin },
    });
    expect(rotated.statusCode).toBe(200);
    const newSecret = rotated.json().secret as string;
    expect(newSecret).toMatch(/^whsec_/);
    expect(newSecret).not.toBe(oldSecret);

    const during = await emitAndDeliver(user, "During");
    const signatures = String(during.headers["webhook-signature"]).split(" ");
    expect(signatures).toHaveLength(2);
    expect(signatures.every((s) => /^v1,[A-Za-z0-9+/]{43}=$/.test(s))).toBe(true);
    expect(await verifyWith(oldSecret, during)).toBe("user.updated");
    expect(await verifyWith(newSecret, during)).toBe("user.updated");
    expect(referenceVerify(oldSecret, during)).toBe("user.updated");
    expect(referenceVerify(newSecret, during)).toBe("user.updated");
    expect(await verifyWith(`whsec_${Buffer.alloc(32, 7).toString("base64")}`, during)).toBe(
      "WEBHOOK_SIGNATURE_INVALID",
    );

    t.clock.advance(SECRET_ROTATION_OVERLAP_SECONDS + 1);
    try {
      const after = await emitAndDeliver(user, "After");
      expect(String(after.headers["webhook-signature"]).split(" ")).toHaveLength(1);
      expect(await verifyWith(newSecret, after)).toBe("user.updated");
      expect(await verifyWith(oldSecret, after)).toBe("WEBHOOK_SIGNATURE_INVALID");
      expect(referenceVerify(newSecret, after)).toBe("user.updated");
      expect(referenceVerify(oldSecret, after)).toBe("No matching signature found");
    } finally {
      t.clock.advance(-(SECRET_ROTATION_OVERLAP_SECONDS + 1));
    }
  });

  async function rotate(app: TestApp["app"], authorization: string, clientId: string, body?: unknown) {
    return app.inject({
      method: "POST",
      url: `/admin/api/v1/clients/${clientId}/webhook/rotate-secret`,
      headers: { authorization },
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    });
  }

  it("takes a per-rotation overlap_seconds (0..7 days): the previous secret signs for exactly that long", async () => {
    const client = await registerClient(t.app);
    const oldSecret = await setWebhook(t.app, admin, client.clientId, { url, events: ["user.updated"] });
    const user = await createUser(t.app);
    await tokensFor(t.app, client, (await sessionCookie(t.app, user)).cookie);

    for (const bad of [-1, 604801, 1.5, "3600"]) {
      const refused = await rotate(t.app, admin, client.clientId, { overlap_seconds: bad });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.code).toBe("VALIDATION_FAILED");
    }
    // A refused rotation changed nothing: the old secret still signs alone.
    expect(await verifyWith(oldSecret, await emitAndDeliver(user, "Unchanged"))).toBe("user.updated");

    const rotated = await rotate(t.app, admin, client.clientId, { overlap_seconds: 3600 });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json().previous_secret_expires_at).toBe(new Date(t.clock.now().getTime() + 3600_000).toISOString());
    const newSecret = rotated.json().secret as string;
    t.clock.advance(3599);
    try {
      const during = await emitAndDeliver(user, "Within the hour");
      expect(String(during.headers["webhook-signature"]).split(" ")).toHaveLength(2);
      expect(await verifyWith(oldSecret, during)).toBe("user.updated");
      t.clock.advance(2);
      const after = await emitAndDeliver(user, "After the hour");
      expect(String(after.headers["webhook-signature"]).split(" ")).toHaveLength(1);
      expect(await verifyWith(oldSecret, after)).toBe("WEBHOOK_SIGNATURE_INVALID");
      expect(await verifyWith(newSecret, after)).toBe("user.updated");
    } finally {
      t.clock.advance(-3601);
    }

    // 0: a leaked secret stops signing at once.
    const immediate = await rotate(t.app, admin, client.clientId, { overlap_seconds: 0 });
    expect(immediate.statusCode).toBe(200);
    expect(immediate.json().previous_secret_expires_at).toBeNull();
    const next = await emitAndDeliver(user, "No overlap");
    expect(String(next.headers["webhook-signature"]).split(" ")).toHaveLength(1);
    expect(await verifyWith(newSecret, next)).toBe("WEBHOOK_SIGNATURE_INVALID");
    expect(await verifyWith(immediate.json().secret as string, next)).toBe("user.updated");
  });

  it("defaults to WEBHOOK_SECRET_OVERLAP_SECONDS", async () => {
    const other = await buildOAuthApp({ WEBHOOK_SECRET_OVERLAP_SECONDS: "600" });
    try {
      const otherAdmin = (await seedAdmin(other.app)).authorization;
      const client = await registerClient(other.app);
      await setWebhook(other.app, otherAdmin, client.clientId, { url, events: ["user.updated"] });
      const rotated = await rotate(other.app, otherAdmin, client.clientId);
      expect(rotated.statusCode).toBe(200);
      expect(rotated.json().previous_secret_expires_at).toBe(
        new Date(other.clock.now().getTime() + 600_000).toISOString(),
      );
    } finally {
      await other.close();
    }
  });
});
