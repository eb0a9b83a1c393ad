import { passkeyChallenges, passkeys } from "@tessera/db";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionCookieName } from "../../src/http/session.ts";
import { sweep } from "../../src/libraries/jobs/sweeper.ts";
import { passkeyAmr } from "../../src/libraries/passkeys/relying-party.ts";
import { signIn } from "../../src/libraries/sessions.ts";
import type { TestApp } from "../helpers.ts";
import {
  authorizeQuery,
  buildOAuthApp,
  createUser,
  getCode,
  pkce,
  redeem,
  registerClient,
  type TestClient,
} from "../oauth/helpers.ts";

/** A passkey sign-in and `acr_values` demanding a second factor; how `amr` is decided. */
let t: TestApp;
let client: TestClient;
const MFA = "urn:tessera:acr:mfa";
const meta = { ip: "127.0.0.1", userAgent: "vitest" };

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app);
});
afterAll(() => t.close());

async function cookieFor(userId: string, amr: string[]) {
  const { token } = await signIn(t.app.ctx, t.app.ctx.db, { userId, amr, meta });
  return `${sessionCookieName(t.app.ctx.config)}=${token}`;
}

async function withPasskey(email: string) {
  const user = await createUser(t.app, { email });
  await t.app.ctx.db.insert(passkeys).values({
    userId: user.id,
    credentialId: `cred-${user.id}`,
    publicKey: "unused-here",
    name: "Key",
  });
  return user;
}

describe("amr of a passkey sign-in", () => {
  it("hwk for a device-bound key, swk for a synced one; user with UV; mfa for two factors", () => {
    expect(passkeyAmr({ backedUp: false, userVerified: true, afterPassword: false })).toEqual(["hwk", "user", "mfa"]);
    expect(passkeyAmr({ backedUp: true, userVerified: true, afterPassword: false })).toEqual(["swk", "user", "mfa"]);
    expect(passkeyAmr({ backedUp: false, userVerified: false, afterPassword: false })).toEqual(["hwk"]);
    expect(passkeyAmr({ backedUp: true, userVerified: false, afterPassword: true })).toEqual(["pwd", "swk", "mfa"]);
  });
});

describe("acr_values with passkeys", () => {
  it("a passkey sign-in with user verification satisfies the mfa acr; the ID token carries its amr", async () => {
    const user = await withPasskey("acr-passkey@example.com");
    const cookie = await cookieFor(user.id, ["hwk", "user", "mfa"]);
    const { code, verifier } = await getCode(t.app, client, cookie, { acr_values: MFA });
    const claims = decodeJwt((await redeem(t.app, client, code, verifier)).json().id_token);
    expect(claims.amr).toEqual(["hwk", "user", "mfa"]);
    expect(claims.acr).toBe(MFA);
  });

  it("a password-only session of a user whose only factor is a passkey is sent to sign in again, not denied", async () => {
    const user = await withPasskey("acr-passkey-fresh@example.com");
    const res = await t.app.inject({
      method: "GET",
      url: `/authorize?${authorizeQuery(client, { acr_values: MFA }, pkce().challenge)}`,
      headers: { cookie: await cookieFor(user.id, ["pwd"]) },
    });
    expect(res.statusCode).toBe(302);
    expect(new URL(res.headers.location as string, "http://x").pathname).toBe("/login");
  });

  it("a key without user verification alone is single-factor: the mfa acr is not satisfied", async () => {
    const user = await withPasskey("acr-passkey-nouv@example.com");
    const res = await t.app.inject({
      method: "GET",
      url: `/authorize?${authorizeQuery(client, { acr_values: MFA }, pkce().challenge)}`,
      headers: { cookie: await cookieFor(user.id, ["hwk"]) },
    });
    expect(res.statusCode).toBe(302);
    expect(new URL(res.headers.location as string, "http://x").pathname).toBe("/login");
  });
});

describe("the sweeper", () => {
  it("deletes passkey challenges that expired before the retention cutoff, and keeps live ones", async () => {
    const now = t.clock.now();
    const old = new Date(now.getTime() - 30 * 86_400_000);
    await t.app.ctx.db.insert(passkeyChallenges).values([
      { tokenHash: "old", challenge: "c1", purpose: "sign_in", createdAt: old, expiresAt: old },
      {
        tokenHash: "live",
        challenge: "c2",
        purpose: "sign_in",
        createdAt: now,
        expiresAt: new Date(now.getTime() + 300_000),
      },
    ]);
    const report = await sweep(t.app.ctx, { batchSize: 10 });
    expect(report.deleted.passkey_challenges).toBe(1);
    const left = await t.app.ctx.db.select({ tokenHash: passkeyChallenges.tokenHash }).from(passkeyChallenges);
    expect(left).toEqual([{ tokenHash: "live" }]);
  });
});
