import { createDatabase } from "@tessera/db";
import { createTestDatabase, usingPostgres } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { disableClient, enableClient, rotateClientSecret } from "../../src/libraries/clients/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { CLIENT_CACHE_TTL_MS } from "../../src/queries/clients.ts";
import { build } from "../contract.ts";
import { basic, createUser, FORM, form, registerClient, sessionCookie, type TestClient, tokensFor } from "./helpers.ts";

/**
 * Client rows are cached per instance (queries/clients.ts). A change takes effect at once on the instance that made
 * it, and within CLIENT_CACHE_TTL_MS on every other instance of the same database.
 */
const ENV = { CLIENT_SECRET_OVERLAP_SECONDS: "0" };
const clock = new TestClock();
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let second: Awaited<ReturnType<typeof createDatabase>> | undefined;
let a: FastifyInstance;
let b: FastifyInstance | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  a = await build(testConfig(ENV), { database, clock });
  await a.ready();
  if (usingPostgres() && database.url) {
    // A second instance: its own app and its own connection pool on the same PostgreSQL database.
    second = await createDatabase({ url: database.url });
    b = await build(testConfig(ENV), { database: second, clock });
    await b.ready();
  }
});
afterAll(async () => {
  await b?.close();
  await second?.close();
  await a.close();
  await database.close();
});

/** 200 when the client authenticates (an unknown token is simply inactive), 401 when it does not. */
async function introspectStatus(app: FastifyInstance, clientId: string, secret: string): Promise<number> {
  const response = await app.inject({
    method: "POST",
    url: "/introspect",
    headers: { ...FORM, authorization: basic(clientId, secret) },
    payload: "token=tsr_unknown",
  });
  if (response.statusCode === 401) expect(response.json().error).toBe("invalid_client");
  return response.statusCode;
}

describe("client cache", () => {
  it("on the instance that made the change: a disabled client or a rotated secret stops at once", async () => {
    const client: TestClient = await registerClient(a);
    expect(await introspectStatus(a, client.clientId, client.secret)).toBe(200); // now cached
    const rotated = await rotateClientSecret(a.ctx, client.clientId);
    expect(await introspectStatus(a, client.clientId, client.secret)).toBe(401);
    expect(await introspectStatus(a, client.clientId, rotated.clientSecret)).toBe(200);
    await disableClient(a.ctx, client.clientId);
    expect(await introspectStatus(a, client.clientId, rotated.clientSecret)).toBe(401);
    await enableClient(a.ctx, client.clientId);
    expect(await introspectStatus(a, client.clientId, rotated.clientSecret)).toBe(200);
  });

  it.skipIf(!usingPostgres())(
    "on another instance of the same database: within CLIENT_CACHE_TTL_MS (real PostgreSQL)",
    async () => {
      const other = b as FastifyInstance;
      const client: TestClient = await registerClient(a);
      expect(await introspectStatus(other, client.clientId, client.secret)).toBe(200); // cached on b
      await disableClient(a.ctx, client.clientId);
      const rotated = await rotateClientSecret(a.ctx, client.clientId);
      expect(await introspectStatus(a, client.clientId, client.secret)).toBe(401);
      // b may still use its copy, but only until the TTL has passed.
      clock.advance(CLIENT_CACHE_TTL_MS / 1000);
      expect(await introspectStatus(other, client.clientId, client.secret)).toBe(401);
      expect(await introspectStatus(other, client.clientId, rotated.clientSecret)).toBe(401); // disabled
      await enableClient(a.ctx, client.clientId);
      // Not cached while disabled, so enabling takes effect on b at once.
      expect(await introspectStatus(other, client.clientId, rotated.clientSecret)).toBe(200);
      expect(await introspectStatus(other, client.clientId, client.secret)).toBe(401);
    },
  );

  it.skipIf(!usingPostgres())(
    "a refresh on an instance still holding a disabled client's row is refused: the rotation reads disabled_at itself",
    async () => {
      const other = b as FastifyInstance;
      const client: TestClient = await registerClient(a);
      const user = await createUser(a);
      const tokens = await tokensFor(a, client, (await sessionCookie(a, user)).cookie);
      expect(await introspectStatus(other, client.clientId, client.secret)).toBe(200); // cached on b
      await disableClient(a.ctx, client.clientId);
      const refreshed = await other.inject({
        method: "POST",
        url: "/token",
        headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
        payload: form({ grant_type: "refresh_token", refresh_token: tokens.refresh_token }),
      });
      expect(refreshed.statusCode).toBe(400);
      expect(refreshed.json()).toEqual({ error: "invalid_grant", error_description: "The client is disabled." });
    },
  );
});
