import { auditEvents, clients } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  authenticateClient,
  createClient,
  disableClient,
  findActiveClient,
  getClient,
  registeredUriProblem,
  rotateClientSecret,
  updateClient,
} from "../../src/libraries/clients/index.ts";
import { sha256 } from "../../src/libraries/crypto.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

let t: TestApp;
const OVERLAP = 600;

beforeAll(async () => {
  t = await buildTestApp({ CLIENT_SECRET_OVERLAP_SECONDS: String(OVERLAP) });
});
afterAll(() => t.close());

const newClient = (extra: Partial<Parameters<typeof createClient>[1]> = {}) =>
  createClient(t.app.ctx, { name: "Game", redirectUris: ["https://game.example/cb"], ...extra });

const auth = (clientId: string, clientSecret: string) => authenticateClient(t.app.ctx, { clientId, clientSecret });

describe("client credentials", () => {
  it("stores only the SHA-256 of a 256-bit secret and authenticates with it", async () => {
    const { client, clientSecret } = await newClient();
    expect(clientSecret).toMatch(/^tcs_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(clientSecret.slice(4), "base64url")).toHaveLength(32);
    const [row] = await t.app.ctx.db.select().from(clients).where(eq(clients.id, client.id));
    expect(row?.clientSecretHash).toBe(sha256(clientSecret));
    await expect(auth(client.clientId, clientSecret)).resolves.toMatchObject({ id: client.id });
  });

  it("refuses wrong, unknown, oversized and non-string credentials with INVALID_CLIENT", async () => {
    const { client, clientSecret } = await newClient();
    const cases: Array<[string, string]> = [
      [client.clientId, `${clientSecret}x`],
      [client.clientId, clientSecret.slice(0, -1)],
      [client.clientId, ""],
      ["unknown-client", clientSecret],
      ["", clientSecret],
      ["x".repeat(5000), clientSecret],
      [client.clientId, undefined as unknown as string],
      [client.clientId, sha256(clientSecret)], // the stored hash is not a credential
    ];
    for (const [id, secret] of cases) {
      await expect(auth(id, secret)).rejects.toMatchObject({ code: "INVALID_CLIENT", status: 401 });
    }
  });

  it("refuses a disabled client, and findActiveClient no longer finds it", async () => {
    const { client, clientSecret } = await newClient();
    await disableClient(t.app.ctx, client.clientId);
    await expect(auth(client.clientId, clientSecret)).rejects.toMatchObject({ code: "INVALID_CLIENT" });
    expect(await findActiveClient(t.app.ctx.db, client.clientId)).toBeNull();
    expect((await getClient(t.app.ctx.db, client.clientId)).disabledAt).not.toBeNull();
  });
});

describe("secret rotation", () => {
  it("keeps the previous secret valid for the configured overlap, then only the new one", async () => {
    const { client, clientSecret: first } = await newClient();
    const { clientSecret: second } = await rotateClientSecret(t.app.ctx, client.clientId);
    await expect(auth(client.clientId, first)).resolves.toBeTruthy();
    await expect(auth(client.clientId, second)).resolves.toBeTruthy();
    t.clock.advance(OVERLAP - 1);
    await expect(auth(client.clientId, first)).resolves.toBeTruthy();
    t.clock.advance(1);
    await expect(auth(client.clientId, first)).rejects.toMatchObject({ code: "INVALID_CLIENT" });
    await expect(auth(client.clientId, second)).resolves.toBeTruthy();
  });

  it("a second rotation replaces the previous secret: the oldest stops working at once", async () => {
    const { client, clientSecret: first } = await newClient();
    const { clientSecret: second } = await rotateClientSecret(t.app.ctx, client.clientId);
    const { clientSecret: third } = await rotateClientSecret(t.app.ctx, client.clientId);
    await expect(auth(client.clientId, first)).rejects.toMatchObject({ code: "INVALID_CLIENT" });
    await expect(auth(client.clientId, second)).resolves.toBeTruthy();
    await expect(auth(client.clientId, third)).resolves.toBeTruthy();
  });

  it("two concurrent rotations lose neither new secret", async () => {
    const { client } = await newClient();
    const [a, b] = await Promise.all([
      rotateClientSecret(t.app.ctx, client.clientId),
      rotateClientSecret(t.app.ctx, client.clientId),
    ]);
    await expect(auth(client.clientId, a.clientSecret)).resolves.toBeTruthy();
    await expect(auth(client.clientId, b.clientSecret)).resolves.toBeTruthy();
  });

  it("with no overlap configured the old secret stops at once", async () => {
    const noOverlap = await buildTestApp({ CLIENT_SECRET_OVERLAP_SECONDS: "0" });
    try {
      const ctx = noOverlap.app.ctx;
      const { client, clientSecret } = await createClient(ctx, { name: "N", redirectUris: ["https://n.example/cb"] });
      const rotated = await rotateClientSecret(ctx, client.clientId);
      expect(rotated.client.previousSecretHash).toBeNull();
      await expect(authenticateClient(ctx, { clientId: client.clientId, clientSecret })).rejects.toMatchObject({
        code: "INVALID_CLIENT",
      });
    } finally {
      await noOverlap.close();
    }
  });

  it("rotating an unknown client is CLIENT_NOT_FOUND", async () => {
    await expect(rotateClientSecret(t.app.ctx, "nope")).rejects.toMatchObject({
      code: "CLIENT_NOT_FOUND",
      status: 404,
    });
  });
});

describe("registration rules", () => {
  it("defaults: not first-party, no direct sign-in, standard scopes, the configured signing alg", async () => {
    const { client } = await newClient();
    expect(client).toMatchObject({
      firstParty: false,
      directSignInEnabled: false,
      allowedScopes: ["openid", "profile", "email", "offline_access"],
      idTokenSignedResponseAlg: "RS256",
      postLogoutRedirectUris: [],
      backchannelLogoutUri: null,
    });
    expect(client.clientId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("removes duplicate URIs and scopes, and can clear optional URIs on update", async () => {
    const { client } = await newClient({
      redirectUris: ["https://game.example/cb", "https://game.example/cb"],
      allowedScopes: ["openid", "openid", "email"],
      backchannelLogoutUri: "https://game.example/bcl",
    });
    expect(client.redirectUris).toEqual(["https://game.example/cb"]);
    expect(client.allowedScopes).toEqual(["openid", "email"]);
    const updated = await updateClient(t.app.ctx, client.clientId, { backchannelLogoutUri: null });
    expect(updated.backchannelLogoutUri).toBeNull();
    expect(updated.redirectUris).toEqual(["https://game.example/cb"]);
  });

  it("audits CLI actions with via=cli and no actor", async () => {
    const { client } = await createClient(
      t.app.ctx,
      { name: "Cli", redirectUris: ["https://cli.example/cb"] },
      { actorId: null, meta: { ip: undefined, userAgent: "tessera-cli" }, via: "cli" },
    );
    const [row] = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.clientId, client.clientId));
    expect(row).toMatchObject({
      event: "admin.client_created",
      outcome: "success",
      actorId: null,
      userAgent: "tessera-cli",
      details: { via: "cli", name: "Cli" },
    });
  });

  it.each([
    ["https://shop.example/cb", null],
    ["https://shop.example/cb?x=1&y=%2F", null],
    ["https://shop.example:8443/cb", null],
    ["http://localhost/cb", null],
    ["http://[::1]:8080/cb", null],
    ["https://xn--bcher-kva.example/cb", null],
    ["https://bücher.example/cb", "must be written in canonical form: https://xn--bcher-kva.example/cb"],
    ["https://shop.example/%7Euser", null],
    ["ftp://shop.example/cb", "must be an absolute https:// URI"],
    ["https:shop.example/cb", "must be an absolute https:// URI"],
    ["https:///cb", "must be written in canonical form: https://cb/"],
    ["http://localhost.evil.example/cb", "must use https (http is allowed only for 127.0.0.1, [::1] and localhost)"],
    ["http://127.1/cb", "must be written in canonical form: http://127.0.0.1/cb"],
    ["https://shop.example/a\\..\\cb", "must be written in canonical form: https://shop.example/cb"],
    ["https://shop.example/cb\u0000", "must not contain spaces or control characters"],
  ])("registeredUriProblem(%s) = %s", (uri, problem) => {
    expect(registeredUriProblem(uri)).toBe(problem);
  });
});
