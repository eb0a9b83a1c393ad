import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { createTestDatabase } from "@tessera/db/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchTestBrowser, type TestBrowser } from "../../../../test-support/chromium.ts";
import { testConfig } from "../../src/config/index.ts";
import { createPublicClient } from "../../src/libraries/clients/index.ts";
import { build } from "../contract.ts";
import { createUser } from "../oauth/helpers.ts";

/**
 * A single-page app on another origin, built on oidc-client-ts (a public-client library Tessera's code does not use),
 * in real headless Chromium: sign-in redirect, code exchange at /token, /userinfo and a refresh — every call a real
 * cross-origin fetch, so the browser enforces CORS (preflights included). A second copy of the page on an
 * unregistered origin is refused by the browser at the token exchange.
 */
const PASSWORD = "a long browser passphrase";
// The package's browser bundle (a global `oidc`), found beside its main entry (the bundle is not in its exports).
const OIDC_JS = readFileSync(
  resolve(dirname(createRequire(import.meta.url).resolve("oidc-client-ts")), "../browser/oidc-client-ts.min.js"),
);

let app: FastifyInstance;
let closeDb: () => Promise<void>;
let browser: TestBrowser;
let issuer: string;
const spas: Server[] = [];

/** A free port from the OS (port 0), for the issuer URL Tessera must know before it listens. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** The SPA: one page that signs in (or finishes the sign-in on /callback), then calls userinfo and refreshes. */
function spaPage(clientId: string, origin: string): string {
  return `<!doctype html><html><body><pre id="out">working</pre><script src="/oidc.js"></script><script>
const mgr = new oidc.UserManager({
  authority: ${JSON.stringify(issuer)}, client_id: ${JSON.stringify(clientId)},
  redirect_uri: ${JSON.stringify(`${origin}/callback`)}, scope: "openid profile email offline_access",
  loadUserInfo: true, automaticSilentRenew: false,
});
(async () => {
  try {
    if (location.pathname === "/callback") {
      const user = await mgr.signinRedirectCallback();
      const renewed = await mgr.signinSilent();
      window.result = { ok: true, sub: user.profile.sub, email: user.profile.email,
        refreshed: renewed.refresh_token !== user.refresh_token, tokenType: user.token_type };
    } else {
      await mgr.signinRedirect();
    }
  } catch (error) {
    window.result = { ok: false, error: String(error && error.message || error) };
  }
})();
</script></body></html>`;
}

async function startSpa(clientIdOf: (origin: string) => string): Promise<string> {
  const server = createServer((request, response) => {
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (request.url === "/oidc.js") {
      response.writeHead(200, { "content-type": "text/javascript" }).end(OIDC_JS);
      return;
    }
    response.writeHead(200, { "content-type": "text/html" }).end(spaPage(clientIdOf(origin), origin));
  });
  spas.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  const database = await createTestDatabase();
  closeDb = () => database.close();
  app = await build(testConfig({ ISSUER: issuer, RATE_LIMIT_ENABLED: "false", ACCOUNT_RESPONSE_FLOOR_MS: "0" }), {
    database,
  });
  await app.listen({ host: "127.0.0.1", port });
  browser = await launchTestBrowser("spa");
});
afterAll(async () => {
  for (const s of spas) s.close();
  await browser?.close();
  await app?.close();
  await closeDb?.();
});

describe("single-page app with oidc-client-ts through CORS", () => {
  it("signs in, exchanges the code, reads /userinfo and refreshes from a registered origin", async () => {
    const email = "spa-player@example.com";
    await createUser(app, { email, password: PASSWORD });
    let clientId = "";
    const spa = await startSpa(() => clientId);
    ({ clientId } = (
      await createPublicClient(app.ctx, {
        name: "Web game",
        firstParty: true,
        redirectUris: [`${spa}/callback`],
        webOrigins: [spa],
      })
    ).client);
    const page = await browser.context.newPage();
    await page.goto(`${spa}/`);
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForFunction(() => (globalThis as unknown as { result?: unknown }).result, null, { timeout: 30_000 });
    const result = await page.evaluate(() => (globalThis as unknown as { result: Record<string, unknown> }).result);
    await browser.shot(page, "01-signed-in");
    expect(result).toMatchObject({ ok: true, email, refreshed: true, tokenType: "Bearer" });
    expect(page.url()).toContain(`${spa}/callback`);
  });

  it("attack: the same app served from an unregistered origin is stopped by the browser at the token exchange", async () => {
    let clientId = "";
    const registered = "http://127.0.0.1:1";
    const evil = await startSpa(() => clientId);
    ({ clientId } = (
      await createPublicClient(app.ctx, {
        name: "Web game 2",
        firstParty: true,
        // The redirect goes to the unregistered page (as if the code were phished); only the web origin differs.
        redirectUris: [`${evil}/callback`],
        webOrigins: [registered],
      })
    ).client);
    const page = await browser.context.newPage();
    await page.goto(`${evil}/`);
    await page.waitForFunction(() => (globalThis as unknown as { result?: unknown }).result, null, { timeout: 30_000 });
    const result = await page.evaluate(() => (globalThis as unknown as { result: Record<string, unknown> }).result);
    expect(result.ok).toBe(false);
    expect(String(result.error)).toMatch(/fetch/i);
  });
});
