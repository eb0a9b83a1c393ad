/**
 * @tessera/sdk/redis on the wire, without a Redis server: a real ioredis client talks RESP to a small TCP stub this
 * test starts, which records every command and answers as Redis would (SET/EXISTS with expiry, plus what ioredis sends
 * on connecting). The behaviour against a real Redis, two app instances included, is in redis.test.ts (REDIS_TEST_URL).
 */
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { createServer, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTessera } from "../src/index.ts";
import { RedisRevokedSessionStore } from "../src/redis.ts";
import { cookieHeader, type StubIssuer, startStubIssuer } from "./stub-issuer.ts";

const commands: string[][] = [];
const keys = new Map<string, { value: string; expiresAt: number }>();
/** When set, every SET/EXISTS answers this RESP error (a Redis that refuses work, e.g. OOM or READONLY). */
let refuse: string | undefined;

/** Parses RESP arrays of bulk strings (what clients send) from `buffer`; returns the commands and the rest. */
function parse(buffer: Buffer): { parsed: string[][]; rest: Buffer } {
  const parsed: string[][] = [];
  let at = 0;
  for (;;) {
    const start = at;
    const line = (from: number) => {
      const end = buffer.indexOf("\r\n", from);
      return end === -1 ? null : { text: buffer.toString("utf8", from, end), next: end + 2 };
    };
    const head = line(at);
    if (!head?.text.startsWith("*")) return { parsed, rest: buffer.subarray(start) };
    const args: string[] = [];
    let next = head.next;
    let complete = true;
    for (let i = 0; i < Number(head.text.slice(1)); i++) {
      const size = line(next);
      if (!size) {
        complete = false;
        break;
      }
      const length = Number(size.text.slice(1));
      if (buffer.length < size.next + length + 2) {
        complete = false;
        break;
      }
      args.push(buffer.toString("utf8", size.next, size.next + length));
      next = size.next + length + 2;
    }
    if (!complete) return { parsed, rest: buffer.subarray(start) };
    parsed.push(args);
    at = next;
  }
}

function answer(args: string[]): string {
  const [name = "", ...rest] = args;
  const command = name.toUpperCase();
  commands.push([command, ...rest]);
  if ((command === "SET" || command === "EXISTS") && refuse) return `-${refuse}\r\n`;
  switch (command) {
    case "INFO": {
      // ioredis's ready check: a server that has finished loading.
      const info = "# Server\r\nloading:0\r\n";
      return `$${info.length}\r\n${info}\r\n`;
    }
    case "PING":
      return "+PONG\r\n";
    case "QUIT":
      return "+OK\r\n";
    case "SET": {
      const [key = "", value = "", ex, seconds] = rest;
      if (ex?.toUpperCase() !== "EX" || !/^[1-9]\d*$/.test(seconds ?? ""))
        return "-ERR invalid expire time in 'set' command\r\n";
      keys.set(key, { value, expiresAt: Date.now() + Number(seconds) * 1000 });
      return "+OK\r\n";
    }
    case "EXISTS": {
      const found = rest.filter((key) => (keys.get(key)?.expiresAt ?? 0) > Date.now()).length;
      return `:${found}\r\n`;
    }
    default:
      return `-ERR unknown command '${name}'\r\n`;
  }
}

let server: Server;
let url: string;
const clients: Redis[] = [];
const sockets = new Set<Socket>();
let stub: StubIssuer;

beforeAll(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      const { parsed, rest } = parse(Buffer.concat([pending, chunk]));
      pending = rest;
      for (const args of parsed) socket.write(answer(args));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `redis://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub = await startStubIssuer(Date.now);
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await stub?.close();
});

function connect(): Redis {
  const client = new Redis(url, { commandTimeout: 2000, maxRetriesPerRequest: 0 });
  clients.push(client);
  return client;
}

describe("RedisRevokedSessionStore on the wire (RESP stub)", () => {
  it("refuses to start without a client", () => {
    expect(() => new RedisRevokedSessionStore(undefined as never)).toThrow(TypeError);
    expect(() => new RedisRevokedSessionStore({} as never)).toThrow(
      "RedisRevokedSessionStore: `client` (an ioredis Redis) is required",
    );
  });

  it("add is one SET <prefix><sid> 1 EX <whole seconds, at least 1>; has is one EXISTS", async () => {
    const store = new RedisRevokedSessionStore({ client: connect() });
    expect(await store.has("sid-a")).toBe(false);
    commands.length = 0;
    await store.add("sid-a", 0.2);
    await store.add("sid-b", 90.1);
    await store.add("sid-c", 600);
    expect(commands).toEqual([
      ["SET", "tessera:revoked:sid-a", "1", "EX", "1"],
      ["SET", "tessera:revoked:sid-b", "1", "EX", "91"],
      ["SET", "tessera:revoked:sid-c", "1", "EX", "600"],
    ]);
    commands.length = 0;
    expect(await store.has("sid-b")).toBe(true);
    expect(commands).toEqual([["EXISTS", "tessera:revoked:sid-b"]]);
  });

  it("keyPrefix separates apps sharing one Redis", async () => {
    const client = connect();
    await new RedisRevokedSessionStore({ client, keyPrefix: "shop:revoked:" }).add("sid-shop", 60);
    expect(await new RedisRevokedSessionStore({ client, keyPrefix: "shop:revoked:" }).has("sid-shop")).toBe(true);
    expect(await new RedisRevokedSessionStore({ client, keyPrefix: "blog:revoked:" }).has("sid-shop")).toBe(false);
    expect(await new RedisRevokedSessionStore({ client }).has("sid-shop")).toBe(false);
  });

  it("a Redis that refuses the check fails closed: SESSION_CHECK_FAILED, the user is not signed in", async () => {
    const appSecret = randomBytes(32);
    const tessera = createTessera({
      issuer: stub.issuer,
      clientId: stub.clientId,
      clientSecret: stub.clientSecret,
      appSecret,
      redirectUri: "http://127.0.0.1:4001/auth/callback",
      cookies: { secure: false, prefix: "web" },
      revokedSessions: new RedisRevokedSessionStore({ client: connect(), keyPrefix: "wire:" }),
    });
    const login = await tessera.login({ returnTo: "/" });
    const jar = new Map<string, string>();
    const signedIn = await tessera.callback({
      url: `/auth/callback?${stub.authorize(login.url)}`,
      cookieHeader: cookieHeader(login.setCookies, jar),
    });
    cookieHeader(signedIn.setCookies, jar);
    const cookies = cookieHeader([], jar);
    expect((await tessera.authenticate({ cookieHeader: cookies })).user?.sessionId).toBe("sid-1");
    refuse = "READONLY You can't write against a read only replica.";
    try {
      const refused = await tessera.authenticate({ cookieHeader: cookies });
      expect(refused.user).toBeNull();
      expect(refused.error?.code).toBe("SESSION_CHECK_FAILED");
    } finally {
      refuse = undefined;
    }
  });
});
