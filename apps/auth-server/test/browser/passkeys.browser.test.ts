import { createServer } from "node:net";
import { auditEvents, passkeys, sessions } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { desc, eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import type { CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchTestBrowser, type TestBrowser } from "../../../../test-support/chromium.ts";
import { testConfig } from "../../src/config/index.ts";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { build } from "../contract.ts";
import { createUser } from "../oauth/helpers.ts";

/**
 * Passkeys in a real browser: Debian's Chromium with the DevTools virtual authenticator (CDP `WebAuthn.enable`,
 * `WebAuthn.addVirtualAuthenticator`: CTAP2, internal, resident keys, user verification) driven through
 * playwright-core's CDP session. Register a passkey from the account page → sign out → sign in with the passkey alone
 * → sign in with the password and the passkey as the second step → a cloned key (the same private key, its counter
 * set back) refused. WebAuthn needs a secure context and a domain RP ID, so Tessera's ISSUER is http://localhost:<port>
 * (Chromium treats localhost as secure) instead of the other suites' 127.0.0.1.
 */
const PASSWORD = "a long browser passphrase";

let app: FastifyInstance;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let browser: TestBrowser;
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
  browser = await launchTestBrowser("passkeys");
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await database?.close();
});

async function virtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

async function signOut(page: Page) {
  await page.goto(`${base}/account`);
  await page.getByRole("button", { name: "Sign out" }).first().click();
  await page.getByText("You are signed out").first().waitFor();
}

async function latestSession(userId: string) {
  const rows = await app.ctx.db.select().from(sessions).where(eq(sessions.userId, userId));
  return rows.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0]!;
}

describe("passkeys in a real browser", () => {
  it("register → sign in with the passkey alone → as the second step → a cloned key refused", async () => {
    const page = await browser.context.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const { cdp, authenticatorId } = await virtualAuthenticator(page);
    const email = "browser-passkey@example.com";
    const user = await createUser(app, { email, password: PASSWORD });

    // Sign in with the password (no passkey yet: one step) and add a passkey from the account page.
    await page.goto(`${base}/login`);
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL(`${base}/account`);
    await page.getByRole("link", { name: "Manage passkeys" }).click();
    await page.waitForURL(`${base}/account/passkeys`);
    await page.getByLabel("Name").fill("Virtual authenticator");
    await page.locator("#add-password").fill(PASSWORD);
    await page.getByRole("button", { name: "Add a passkey" }).click();
    await page.waitForURL(`${base}/account/passkeys?notice=added`);
    await page.getByText("Your passkey was added.").waitFor();
    await expect(page.getByText("Virtual authenticator").count()).resolves.toBe(1);
    await browser.shot(page, "01-added");
    const [stored] = await app.ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id));
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]!.isResidentCredential).toBe(true);
    expect(stored!.credentialId).toBe(Buffer.from(credentials[0]!.credentialId, "base64").toString("base64url"));

    // Sign out, then sign in with the passkey alone through the browser's autofill (conditional mediation on the
    // email field): the virtual authenticator answers the pending request at once, with nothing typed or clicked.
    await signOut(page);
    await page.goto(`${base}/login?return_to=${encodeURIComponent("/account")}`);
    await page.waitForURL(`${base}/account`);
    await page.getByText(`Signed in as ${email}`).waitFor();
    expect((await latestSession(user.id)).amr).toEqual(["hwk", "user", "mfa"]);
    await browser.shot(page, "02-signed-in-with-passkey");

    // From here on the page has no autofill (as in a browser without conditional mediation), so the button and the
    // password form are what the user uses.
    await page.addInitScript(() => {
      // Runs in the page (the Node types here have no DOM).
      const credential = (globalThis as unknown as { PublicKeyCredential: Record<string, unknown> })
        .PublicKeyCredential;
      credential.isConditionalMediationAvailable = async () => false;
    });
    await signOut(page);
    await page.goto(`${base}/login?return_to=${encodeURIComponent("/account")}`);
    await page.getByRole("button", { name: "Continue with a passkey" }).click();
    await page.waitForURL(`${base}/account`);
    expect((await latestSession(user.id)).amr).toEqual(["hwk", "user", "mfa"]);

    // Password sign-in now has a second step, and the passkey is it.
    await signOut(page);
    await page.goto(`${base}/login`);
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL(`${base}/login/passkey`);
    await browser.shot(page, "03-second-step");
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await page.waitForURL(`${base}/account`);
    expect((await latestSession(user.id)).amr).toEqual(["pwd", "hwk", "user", "mfa"]);

    // A clone: the same private key with its counter set back to where it was at registration.
    await signOut(page);
    const { credentials: now } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    const before = (await app.ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id)))[0]!;
    expect(before.counter).toBeGreaterThan(1);
    await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: now[0]!.credentialId });
    await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...now[0]!, signCount: 0 } });
    const sessionsBefore = await app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    await page.goto(`${base}/login`);
    await page.getByRole("button", { name: "Continue with a passkey" }).click();
    await page.getByText("answered with an old signature counter").waitFor();
    await browser.shot(page, "04-clone-refused");
    expect(page.url()).toBe(`${base}/login`);
    expect((await app.ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id)))[0]).toEqual(before);
    expect(await app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id))).toHaveLength(
      sessionsBefore.length,
    );
    const [refused] = await app.ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.event, "passkey.assertion_refused"))
      .orderBy(desc(auditEvents.at))
      .limit(1);
    expect(refused).toMatchObject({ userId: user.id, details: { reason: "counter", purpose: "sign_in" } });
    expect(violations).toEqual([]);
  });
});
