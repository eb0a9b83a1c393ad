import { createServer } from "node:net";
import { passkeys, sessions, userIdentities } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchTestBrowser, type TestBrowser } from "../../../../test-support/chromium.ts";
import { testConfig } from "../../src/config/index.ts";
import { createProvider } from "../../src/libraries/federation/providers.ts";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { build } from "../contract.ts";
import { type OidcUpstream, startOidcUpstream } from "../federation/upstreams.ts";
import { createUser } from "../oauth/helpers.ts";

/**
 * A pending link proven with a passkey in a real browser: Debian's Chromium with the DevTools virtual authenticator
 * (as passkeys.browser.test.ts), a real OpenID Provider upstream (as federation.browser.test.ts). The account adds a
 * passkey, signs out, signs in upstream with an identity claiming its address, and on the link page "Use a passkey"
 * (public/tessera.js, under the CSP) links the identity and signs in. ISSUER is http://localhost:<port>: WebAuthn
 * needs a domain RP ID. Screenshots go to test-output/browser/federation-passkey (git-ignored).
 */
const PASSWORD = "a long browser passphrase";
let app: FastifyInstance;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let browser: TestBrowser;
let upstream: OidcUpstream;
let base: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

beforeAll(async () => {
  database = await createTestDatabase();
  const port = await freePort();
  base = `http://localhost:${port}`;
  app = await build(testConfig({ ISSUER: base, RATE_LIMIT_ENABLED: "false", ACCOUNT_RESPONSE_FLOOR_MS: "0" }), {
    database,
    mailer: new OutboxMailer(),
  });
  await app.listen({ host: "127.0.0.1", port });
  upstream = await startOidcUpstream(`${base}/federation/acme/callback`);
  await createProvider(
    app.ctx,
    {
      slug: "acme",
      type: "oidc",
      displayName: "Acme ID",
      issuer: upstream.issuer,
      clientId: upstream.clientId,
      clientSecret: upstream.clientSecret,
    },
    { actorId: null, meta: { ip: undefined, userAgent: "vitest" } },
  );
  browser = await launchTestBrowser("federation-passkey");
});

afterAll(async () => {
  await browser?.close();
  await upstream?.close();
  await app?.close();
  await database?.close();
});

describe("pending link proven with a passkey in a real browser", () => {
  it("the link page's passkey button links the identity and signs in", async () => {
    const page = await browser.context.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    const email = "browser-link-passkey@example.com";
    const user = await createUser(app, { email, password: PASSWORD });

    // The account adds a passkey, then signs out.
    await page.goto(`${base}/login`);
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL(`${base}/account`);
    await page.goto(`${base}/account/passkeys`);
    await page.getByLabel("Name").fill("Virtual authenticator");
    await page.locator("#add-password").fill(PASSWORD);
    await page.getByRole("button", { name: "Add a passkey" }).click();
    await page.waitForURL(`${base}/account/passkeys?notice=added`);
    await page.goto(`${base}/account`);
    await page.getByRole("button", { name: "Sign out" }).first().click();
    await page.getByText("You are signed out").first().waitFor();

    // An upstream identity claiming the address: nothing linked, the link page offers the passkey. (Started at the
    // provider's start URL, not /login, whose passkey autofill would sign the account in by itself here.)
    upstream.as("browser-passkey-sub", { email, email_verified: true });
    await page.goto(`${base}/federation/acme/start`);
    await page.waitForURL(`${base}/federation/link`);
    const linked = async () =>
      (await app.ctx.db.select().from(userIdentities).where(eq(userIdentities.userId, user.id))).map((i) => i.subject);
    expect(await linked()).toEqual([]);
    await browser.shot(page, "01-link-offers-passkey");
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await page.waitForURL(`${base}/account`);
    await expect(page.locator("#identities").textContent()).resolves.toContain("Acme ID");
    await browser.shot(page, "02-linked-with-passkey");

    expect(await linked()).toEqual(["browser-passkey-sub"]);
    const [latest] = (await app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id))).sort(
      (a, b) => b.createdAt.getTime() - a.createdAt.getTime(),
    );
    expect(latest?.amr).toEqual(["hwk", "user", "mfa", "fed", "acme"]);
    const [key] = await app.ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id));
    expect(key?.lastUsedAt).toBeInstanceOf(Date);
    expect(violations).toEqual([]);
  });
});
