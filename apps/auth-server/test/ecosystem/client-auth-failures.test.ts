import { auditEvents } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { desc, eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { createPublicClient } from "../../src/libraries/clients/registry.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { build } from "../contract.ts";
import { REDIRECT, registerClient, type TestClient } from "../oauth/helpers.ts";

/**
 * Issue #17, "errors an integrator can act on": a failed client authentication at /token, /introspect, /revoke and
 * /device_authorization is logged (warn, with the client_id and a reason, never the secret; at most 20 lines a minute)
 * and audited as client.authentication_failed with the same reason. The wire answer stays one invalid_client.
 */
const lines: string[] = [];
const clock = new TestClock();
let app: FastifyInstance;
let close: () => Promise<void>;
let confidential: TestClient;
let publicClientId: string;
let ipCounter = 0;

beforeAll(async () => {
  const database = await createTestDatabase();
  app = await build(testConfig({ LOG_LEVEL: "info" }), {
    database,
    clock,
    logStream: { write: (line) => void lines.push(line) },
  });
  await app.ready();
  close = async () => {
    await app.close();
    await database.close();
  };
  confidential = await registerClient(app, {
    grantTypes: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
  });
  const { client } = await createPublicClient(app.ctx, { name: "Spa", redirectUris: [REDIRECT] });
  publicClientId = client.clientId;
}, 0);
afterAll(async () => close?.());

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

/** One request from its own IP (so the per-IP rate limits never answer first). */
async function post(url: string, body: Record<string, string>, authorization?: string) {
  ipCounter++;
  return app.inject({
    method: "POST",
    url,
    remoteAddress: `10.0.${Math.floor(ipCounter / 250)}.${(ipCounter % 250) + 1}`,
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(authorization ? { authorization } : {}),
    },
    payload: new URLSearchParams(body).toString(),
  });
}

const failureLines = () =>
  lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === "client.authentication_failed");

async function lastAudit() {
  const [row] = await app.ctx.db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.event, "client.authentication_failed"))
    .orderBy(desc(auditEvents.id))
    .limit(1);
  return row;
}

describe("failed client authentication is logged and audited with a reason", () => {
  const SECRET = "wrong-secret-that-must-never-be-logged";
  const cases: Array<{
    name: string;
    url: string;
    body: () => Record<string, string>;
    auth?: () => string;
    clientId: () => string | null;
    method?: string;
    reason: string;
  }> = [
    {
      name: "/token, wrong secret (Basic)",
      url: "/token",
      body: () => ({ grant_type: "refresh_token", refresh_token: "tsr_x" }),
      auth: () => basic(confidential.clientId, SECRET),
      clientId: () => confidential.clientId,
      method: "client_secret_basic",
      reason: "wrong_secret",
    },
    {
      name: "/introspect, unknown client (post)",
      url: "/introspect",
      body: () => ({ token: "x", client_id: "no-such-client", client_secret: SECRET }),
      clientId: () => "no-such-client",
      method: "client_secret_post",
      reason: "unknown_client",
    },
    {
      name: "/revoke, a public client sending a secret",
      url: "/revoke",
      body: () => ({ token: "x", client_id: publicClientId, client_secret: SECRET }),
      clientId: () => publicClientId,
      method: "client_secret_post",
      reason: "wrong_auth_method",
    },
    {
      name: "/device_authorization, a confidential client without its secret",
      url: "/device_authorization",
      body: () => ({ client_id: confidential.clientId }),
      clientId: () => confidential.clientId,
      method: "none",
      reason: "secret_required",
    },
    {
      name: "/introspect, a public client (introspection needs a secret)",
      url: "/introspect",
      body: () => ({ token: "x", client_id: publicClientId }),
      clientId: () => publicClientId,
      method: "none",
      reason: "public_client_not_allowed",
    },
    {
      name: "/token, no client at all",
      url: "/token",
      body: () => ({ grant_type: "refresh_token", refresh_token: "tsr_x" }),
      clientId: () => null,
      reason: "missing_credentials",
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const before = failureLines().length;
      const res = await post(c.url, c.body(), c.auth?.());
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: "invalid_client" });
      expect(res.body).not.toContain(c.reason); // the reason is for the operator, not the caller

      const logged = failureLines().slice(before);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({
        level: 40,
        msg: "client authentication failed",
        reason: c.reason,
        endpoint: c.url,
        ...(c.clientId() ? { clientId: c.clientId() } : {}),
        ...(c.method ? { method: c.method } : {}),
      });
      expect(JSON.stringify(logged[0])).not.toContain(SECRET);

      const row = await lastAudit();
      expect(row).toMatchObject({
        outcome: "failure",
        clientId: c.clientId(),
        details: { reason: c.reason, endpoint: c.url, ...(c.method ? { method: c.method } : {}) },
      });
      expect(JSON.stringify(row)).not.toContain(SECRET);
    });
  }

  it("logs at most 20 lines a minute, audits every failure, then says how many lines were left out", async () => {
    clock.advance(61); // a fresh minute for the log window
    const before = failureLines().length;
    const auditsBefore = await countAudits();
    for (let i = 0; i < 25; i++) {
      const res = await post("/token", { grant_type: "refresh_token", refresh_token: "tsr_x" }, basic("flood", "x"));
      expect(res.statusCode).toBe(401);
    }
    expect(failureLines().length - before).toBe(20);
    const auditsAfter = await countAudits();
    expect(auditsAfter - auditsBefore).toBe(25);

    clock.advance(61);
    await post("/token", { grant_type: "refresh_token", refresh_token: "tsr_x" }, basic("flood", "x"));
    expect(failureLines().at(-1)).toMatchObject({ clientId: "flood", reason: "unknown_client", suppressed: 5 });
  });
});

async function countAudits() {
  const rows = await app.ctx.db
    .select({ id: auditEvents.id })
    .from(auditEvents)
    .where(eq(auditEvents.event, "client.authentication_failed"));
  return rows.length;
}
