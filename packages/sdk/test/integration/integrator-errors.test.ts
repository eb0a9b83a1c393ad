/**
 * Errors an integrator can act on, against a real Tessera listening on 127.0.0.1: `tessera.check()` names a wrong
 * client secret, an unregistered redirect URI, an issuer that does not match discovery and an unreachable Tessera,
 * each logged once; and a sign-in whose code exchange fails (wrong secret) shows the browser a readable HTML page
 * with the stable code (502, `data-error`), not raw JSON, while the SDK logs `invalid_client` once.
 */
import { createServer } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../../../apps/auth-server/src/config/index.ts";
import { createClient } from "../../../../apps/auth-server/src/libraries/clients/index.ts";
import { hashPassword } from "../../../../apps/auth-server/src/libraries/passwords.ts";
import { insertUser } from "../../../../apps/auth-server/src/queries/users.ts";
import { build } from "../../../../apps/auth-server/test/contract.ts";
import { createTestDatabase } from "../../../db/src/testing.ts";
import { tesseraPlugin } from "../../src/fastify.ts";
import { createTessera, type TesseraOptions } from "../../src/index.ts";
import { cookieHeader } from "../stub-issuer.ts";

const PASSWORD = "correct horse battery staple 42";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

let tessera: FastifyInstance;
let closeDatabase: () => Promise<void>;
let issuer: string;
let shopUrl: string;
let options: TesseraOptions;

/** A logger that records what the SDK reports. */
function recorder() {
  const lines: string[] = [];
  return { lines, logger: { warn: (message: string) => lines.push(message) } };
}

/** A browser's navigation: follows redirects by hand with a cookie jar, sends Accept: text/html. */
async function navigate(jar: Map<string, string>, url: string, init: RequestInit = { method: "GET" }) {
  let current = url;
  let options = init;
  for (let hop = 0; hop < 10; hop++) {
    const response = await fetch(current, {
      ...options,
      redirect: "manual",
      headers: { accept: "text/html", ...(options.headers as Record<string, string>), cookie: cookieHeader([], jar) },
    });
    cookieHeader(response.headers.getSetCookie(), jar);
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || !location) return { response, url: current };
    await response.body?.cancel();
    current = new URL(location, current).toString();
    options = { method: "GET" };
  }
  throw new Error("too many redirects");
}

beforeAll(async () => {
  const [tesseraPort, shopPort] = await Promise.all([freePort(), freePort()]);
  issuer = `http://127.0.0.1:${tesseraPort}`;
  shopUrl = `http://127.0.0.1:${shopPort}`;
  const database = await createTestDatabase();
  closeDatabase = () => database.close();
  const config = testConfig({ ISSUER: issuer, ARGON2_MEMORY_KIB: "19456" });
  tessera = await build(config, { database });
  await tessera.listen({ port: tesseraPort, host: "127.0.0.1" });
  const registered = await createClient(tessera.ctx, {
    name: "Integrator shop",
    redirectUris: [`${shopUrl}/auth/callback`],
    postLogoutRedirectUris: [`${shopUrl}/`],
    firstParty: true,
  });
  await insertUser(tessera.ctx.db, {
    email: "ada@example.com",
    passwordHash: await hashPassword(config.passwords, PASSWORD),
    displayName: "Ada",
    now: new Date(),
  });
  options = {
    issuer,
    clientId: registered.client.clientId,
    clientSecret: registered.clientSecret,
    appSecret: "integrator-app-secret-0123456789abcdef",
    redirectUri: `${shopUrl}/auth/callback`,
    cookies: { secure: false, prefix: "shop" },
  };
}, 60_000);

afterAll(async () => {
  await tessera?.close();
  await closeDatabase?.();
});

describe("tessera.check() at start-up", () => {
  it("passes a correct configuration and logs nothing", async () => {
    const { lines, logger } = recorder();
    expect(await createTessera({ ...options, logger }).check()).toEqual({ ok: true, problems: [] });
    expect(lines).toEqual([]);
  });

  it("names a wrong client secret (invalid_client), logged once however often it is asked", async () => {
    const { lines, logger } = recorder();
    const client = createTessera({ ...options, clientSecret: `${options.clientSecret}x`, logger });
    const first = await client.check();
    expect(first.ok).toBe(false);
    expect(first.problems.map((p) => p.code)).toEqual(["INVALID_CLIENT"]);
    await client.check();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("INVALID_CLIENT");
    expect(lines[0]).toContain(options.clientId);
    expect(lines[0]).not.toContain(options.clientSecret); // never a secret in a log
  });

  it("names a redirect URI not registered for the client", async () => {
    const { lines, logger } = recorder();
    const redirectUri = `${shopUrl}/oauth/callback`;
    const result = await createTessera({ ...options, redirectUri, logger }).check();
    expect(result.problems.map((p) => p.code)).toEqual(["REDIRECT_URI_NOT_REGISTERED"]);
    expect(lines).toEqual([expect.stringContaining(redirectUri)]);
  });

  it("names an issuer that does not match Tessera's discovery document, and an unreachable Tessera", async () => {
    const { lines, logger } = recorder();
    const other = issuer.replace("127.0.0.1", "localhost");
    const mismatch = await createTessera({ ...options, issuer: other, logger }).check();
    expect(mismatch.problems).toEqual([
      { code: "ISSUER_UNAVAILABLE", message: expect.stringContaining(`names issuer ${issuer}, expected ${other}`) },
    ]);
    const down = await createTessera({ ...options, issuer: `http://127.0.0.1:${await freePort()}`, logger }).check();
    expect(down.problems.map((p) => p.code)).toEqual(["ISSUER_UNAVAILABLE"]);
    expect(lines).toHaveLength(2);
  });
});

describe("a failed code exchange, as the user and the integrator see it", () => {
  let shop: FastifyInstance;
  const { lines, logger } = recorder();

  beforeAll(async () => {
    shop = Fastify();
    await shop.register(tesseraPlugin, { ...options, clientSecret: "wrong-secret-wrong-secret-wrong", logger });
    await shop.listen({ port: Number(new URL(shopUrl).port), host: "127.0.0.1" });
  });
  afterAll(async () => {
    await shop?.close();
  });

  async function signIn() {
    const jar = new Map<string, string>();
    const page = await navigate(jar, `${shopUrl}/auth/login`);
    expect(new URL(page.url).pathname).toBe("/login");
    const html = await page.response.text();
    const hidden = Object.fromEntries(
      [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [
        m[1],
        (m[2] ?? "")
          .replace(/&amp;/g, "&")
          .replace(/&quot;/g, '"')
          .replace(/&#39;/g, "'"),
      ]),
    );
    return navigate(jar, `${issuer}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: issuer },
      body: new URLSearchParams({ ...hidden, email: "ada@example.com", password: PASSWORD }).toString(),
    });
  }

  it("shows the browser a readable 502 page with the stable code, and logs invalid_client once", async () => {
    const end = await signIn();
    expect(new URL(end.url).pathname).toBe("/auth/callback");
    expect(end.response.status).toBe(502);
    expect(end.response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(end.response.headers.get("cache-control")).toBe("no-store");
    const page = await end.response.text();
    expect(page).toContain("<h1>Sign-in failed</h1>");
    expect(page).toContain('data-error="TOKEN_EXCHANGE_FAILED"');
    expect(page).toContain("(invalid_client)");
    expect(page).toContain('<a href="/auth/login">Sign in again</a>');
    expect(page).not.toContain("wrong-secret");
    expect(lines).toEqual([expect.stringMatching(/INVALID_CLIENT: Tessera refused this app's client credentials/)]);

    await signIn(); // the same cause again: not logged again
    expect(lines).toHaveLength(1);
  }, 60_000);

  it("an errorPage hook replaces the page", async () => {
    const custom = Fastify();
    const port = await freePort();
    await custom.register(tesseraPlugin, {
      ...options,
      redirectUri: `http://127.0.0.1:${port}/auth/callback`,
      logger,
      errorPage: (error) => `<p class="oops">${error.code}</p>`,
    });
    const response = await custom.inject({
      method: "GET",
      url: "/auth/callback?code=x&state=y",
      headers: { accept: "text/html" },
    });
    expect(response.statusCode).toBe(400);
    expect(response.body).toBe('<p class="oops">LOGIN_STATE_MISSING</p>');
    // An API client (no text/html) still gets the JSON error.
    const json = await custom.inject({ method: "GET", url: "/auth/callback?code=x&state=y" });
    expect(json.json()).toEqual({ code: "LOGIN_STATE_MISSING", message: expect.any(String) });
    await custom.close();
  });
});
