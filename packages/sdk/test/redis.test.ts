/**
 * @tessera/sdk/redis against a real Redis (REDIS_TEST_URL, e.g. redis://127.0.0.1:6379; skipped when unset). Two
 * instances of one app, each with its own Redis connection: a back-channel logout delivered to one refuses the
 * session's access JWT on the other at once. Keys use a prefix unique to this run and are deleted afterwards.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTessera, type TesseraOptions } from "../src/index.ts";
import { RedisRevokedSessionStore } from "../src/redis.ts";
import { cookieHeader, type StubIssuer, startStubIssuer } from "./stub-issuer.ts";

const url = process.env.REDIS_TEST_URL;
const prefix = `tessera-test:${randomUUID()}:revoked:`;
const clock = Date.now();
const now = () => clock;
const appSecret = randomBytes(32);
let stub: StubIssuer;
const clients: Redis[] = [];

function connect(): Redis {
  const client = new Redis(url ?? "", { commandTimeout: 2000, maxRetriesPerRequest: 1 });
  clients.push(client);
  return client;
}

/** One app instance: the same client registration and app secret as its siblings, its own Redis connection. */
function instance(): ReturnType<typeof createTessera> {
  const options: TesseraOptions = {
    issuer: stub.issuer,
    clientId: stub.clientId,
    clientSecret: stub.clientSecret,
    appSecret,
    redirectUri: "http://127.0.0.1:4001/auth/callback",
    cookies: { secure: false, prefix: "web" },
    now,
    revokedSessions: new RedisRevokedSessionStore({ client: connect(), keyPrefix: prefix }),
  };
  return createTessera(options);
}

describe.skipIf(!url)("RedisRevokedSessionStore (real Redis at REDIS_TEST_URL)", () => {
  beforeAll(async () => {
    stub = await startStubIssuer(now);
  });
  afterAll(async () => {
    const admin = clients[0];
    if (admin) {
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length) await admin.del(...keys);
    }
    await Promise.all(clients.map((c) => c.quit()));
    await stub?.close();
  });

  it("a back-channel logout delivered to one instance refuses the session on the other at once", async () => {
    const first = instance();
    const second = instance();
    // The user signs in through the first instance; the browser's cookies then reach either instance.
    const login = await first.login({ returnTo: "/" });
    const jar = new Map<string, string>();
    const cookies = cookieHeader(login.setCookies, jar);
    const signedIn = await first.callback({
      url: `/auth/callback?${stub.authorize(login.url)}`,
      cookieHeader: cookies,
    });
    cookieHeader(signedIn.setCookies, jar);
    const header = cookieHeader([], jar);
    expect((await second.authenticate({ cookieHeader: header })).user?.sessionId).toBe("sid-1");

    const iat = Math.floor(clock / 1000);
    const logoutToken = await stub.sign(
      {
        iss: stub.issuer,
        aud: stub.clientId,
        sub: "user-1",
        sid: "sid-1",
        iat,
        exp: iat + 120,
        jti: randomBytes(8).toString("hex"),
        events: { "http://schemas.openid.net/event/backchannel-logout": {} },
      },
      { typ: "logout+jwt" },
    );
    await first.handleBackchannelLogout({ logoutToken });

    const refused = await second.authenticate({ cookieHeader: header });
    expect(refused.user).toBeNull();
    expect(refused.error?.code).toBe("SESSION_REVOKED");
    expect((await first.authenticate({ cookieHeader: header })).error?.code).toBe("SESSION_REVOKED");
    // A third instance started later sees it too: the state is in Redis, not in a process.
    expect((await instance().authenticate({ cookieHeader: header })).error?.code).toBe("SESSION_REVOKED");
  });

  it("stores one key per session with a whole-second time to live, under the prefix only", async () => {
    const client = connect();
    const store = new RedisRevokedSessionStore({ client, keyPrefix: prefix });
    expect(await store.has("sid-ttl")).toBe(false);
    await store.add("sid-ttl", 0.2);
    expect(await store.has("sid-ttl")).toBe(true);
    expect(await client.get(`${prefix}sid-ttl`)).toBe("1");
    expect(await client.ttl(`${prefix}sid-ttl`)).toBe(1);
    await store.add("sid-ttl", 600);
    expect(await client.ttl(`${prefix}sid-ttl`)).toBeGreaterThan(590);
    expect(await new RedisRevokedSessionStore({ client, keyPrefix: `${prefix}other:` }).has("sid-ttl")).toBe(false);
  });

  it("an unreachable Redis fails closed: SESSION_CHECK_FAILED, not a signed-in user", async () => {
    const broken = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    afterAll(() => broken.disconnect());
    broken.on("error", () => undefined); // connection refused is the point of this test
    const signedIn = instance();
    const login = await signedIn.login({ returnTo: "/" });
    const jar = new Map<string, string>();
    const cookies = cookieHeader(login.setCookies, jar);
    const result = await signedIn.callback({
      url: `/auth/callback?${stub.authorize(login.url)}`,
      cookieHeader: cookies,
    });
    cookieHeader(result.setCookies, jar);
    const isolated = createTessera({
      issuer: stub.issuer,
      clientId: stub.clientId,
      clientSecret: stub.clientSecret,
      appSecret,
      redirectUri: "http://127.0.0.1:4001/auth/callback",
      cookies: { secure: false, prefix: "web" },
      now,
      revokedSessions: new RedisRevokedSessionStore({ client: broken, keyPrefix: prefix }),
    });
    const answer = await isolated.authenticate({ cookieHeader: cookieHeader([], jar) });
    expect(answer.user).toBeNull();
    expect(answer.error?.code).toBe("SESSION_CHECK_FAILED");
  });
});
