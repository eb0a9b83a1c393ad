import {
  auditEvents,
  billingCustomers,
  clients,
  consents,
  emailTokens,
  entitlements,
  identityProviders,
  passkeys,
  plans,
  purchases,
  recoveryCodes,
  refreshTokens,
  roles,
  sessions,
  termsAcceptances,
  totpFactors,
  userEntitlements,
  userIdentities,
  userRoles,
} from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomToken, sha256 } from "../../src/libraries/crypto.ts";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, formFor, PASSWORD } from "../accounts/helpers.ts";
import { seedAdmin, sessionCookie } from "../admin/helpers.ts";
import { createUser, registerClient } from "../oauth/helpers.ts";

/**
 * The data export (#16): a user with every kind of data gets one `tessera.export/1` document of the documented shape,
 * with no secret planted anywhere in it and nothing of another user; re-authentication rules; the admin export.
 */
let t: AccountsTestApp;
const meta = { ip: "198.51.100.7", userAgent: "ExportTest/1.0" };

beforeAll(async () => {
  t = await buildAccountsApp({ RATE_LIMIT_LOGIN: "1000/60", RATE_LIMIT_MFA: "1000/60", REAUTH_WINDOW_SECONDS: "300" });
});
afterAll(() => t.close());

/** A user with a row in every table the export reads; returns every secret value stored for them. */
async function userWithEverything(email: string, tag: string) {
  const db = t.app.ctx.db;
  const user = await createUser(t.app, { email, password: PASSWORD, displayName: `Name ${tag}` });
  const secrets: string[] = [user.passwordHash ?? ""];
  const { secret } = await beginTotpEnrolment(t.app.ctx, meta, user);
  const { recoveryCodes: codes } = await confirmTotpEnrolment(t.app.ctx, meta, {
    userId: user.id,
    code: currentCode(secret, t.clock.now()),
  });
  const [factor] = await db.select().from(totpFactors).where(eq(totpFactors.userId, user.id));
  const hashes = await db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, user.id));
  secrets.push(secret, factor!.secretEncrypted, ...codes, ...codes.map((c) => c.replace(/-/g, "")));
  secrets.push(...hashes.map((h) => h.codeHash));
  const game = await registerClient(t.app, { name: `Game ${tag}` });
  const [client] = await db.select().from(clients).where(eq(clients.clientId, game.clientId));
  secrets.push(game.secret, client!.clientSecretHash as string);
  const sessionToken = randomToken();
  const [session] = await db
    .insert(sessions)
    .values({
      tokenHash: sha256(sessionToken),
      userId: user.id,
      authenticatedAt: t.clock.now(),
      lastSeenAt: t.clock.now(),
      expiresAt: new Date(t.clock.now().getTime() + 86_400_000),
      idleExpiresAt: new Date(t.clock.now().getTime() + 86_400_000),
      ip: `203.0.113.${tag.length}`,
      userAgent: `Agent ${tag}`,
    })
    .returning();
  const refresh = randomToken();
  await db.insert(refreshTokens).values({
    tokenHash: sha256(refresh),
    sessionId: session!.id,
    clientId: client!.id,
    userId: user.id,
    scope: "openid profile offline_access",
  });
  const emailToken = randomToken();
  await db.insert(emailTokens).values({
    tokenHash: sha256(emailToken),
    userId: user.id,
    purpose: "change_email",
    newEmail: `new-${email}`,
    expiresAt: new Date(t.clock.now().getTime() + 3_600_000),
  });
  secrets.push(sessionToken, sha256(sessionToken), refresh, sha256(refresh), emailToken, sha256(emailToken));
  const [idp] = await db
    .insert(identityProviders)
    .values({ slug: `up-${tag}`, kind: "oidc", displayName: `Upstream ${tag}`, clientSecretEncrypted: `sealed-${tag}` })
    .returning();
  secrets.push(`sealed-${tag}`);
  await db.insert(userIdentities).values({ userId: user.id, providerId: idp!.id, subject: `sub-${tag}` });
  const [role] = await db
    .insert(roles)
    .values({ clientId: client!.id, name: `role-${tag}` })
    .returning();
  await db.insert(userRoles).values({ userId: user.id, roleId: role!.id });
  const [ent] = await db
    .insert(entitlements)
    .values({ name: `ent-${tag}` })
    .returning();
  const [plan] = await db
    .insert(plans)
    .values({
      name: `Plan ${tag}`,
      kind: "one_time",
      cryptoPrice: "5.00",
      cryptoCurrency: "USD",
      entitlements: [`ent-${tag}`],
    })
    .returning();
  const [purchase] = await db
    .insert(purchases)
    .values({
      userId: user.id,
      planId: plan!.id,
      provider: "btcpay",
      providerRef: `inv-${tag}`,
      kind: "one_time",
      status: "Settled",
    })
    .returning();
  await db.insert(userEntitlements).values({
    userId: user.id,
    entitlementId: ent!.id,
    clientIds: [client!.id],
    source: "purchase",
    sourceRef: purchase!.id,
  });
  await db.insert(billingCustomers).values({ userId: user.id, provider: "stripe", customerId: `cus_${tag}` });
  await db
    .insert(termsAcceptances)
    .values({ userId: user.id, termsVersion: "2026-01", privacyVersion: "p1", context: "register" });
  const publicKey = `pk-${tag}-${randomToken()}`;
  await db.insert(passkeys).values({
    userId: user.id,
    credentialId: `cred-${tag}-${randomToken()}`,
    publicKey,
    counter: 7,
    transports: ["internal"],
    name: `Key ${tag}`,
  });
  secrets.push(publicKey);
  const at = new Date();
  await db
    .insert(consents)
    .values({ userId: user.id, clientId: client!.id, scopes: ["openid", "roles"], grantedAt: at, updatedAt: at });
  return { user, secrets, clientId: game.clientId };
}

const keysOf = (value: unknown) => Object.keys(value as object).sort();

describe("GET /api/v1/me/export", () => {
  it("returns every kind of data in the documented shape, with no secret and nothing of another user", async () => {
    const alice = await userWithEverything("export-alice@example.com", "alice");
    const bob = await userWithEverything("export-bob@example.com", "bob-bob");
    // Alice has two-step verification on: a session as the code step would leave it.
    const cookie = await sessionCookie(t.app, alice.user.id, ["pwd", "otp"]);
    const res = await t.app.inject({ method: "GET", url: "/api/v1/me/export", headers: { cookie } });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.headers["content-disposition"]).toMatch(
      /^attachment; filename="tessera-export-\d{4}-\d{2}-\d{2}\.json"$/,
    );
    const body = res.body;
    const doc = JSON.parse(body);
    expect(keysOf(doc)).toEqual(
      [
        "schema",
        "generatedAt",
        "user",
        "emails",
        "linkedIdentities",
        "passkeys",
        "twoStep",
        "sessions",
        "consents",
        "rememberedConsents",
        "roles",
        "entitlements",
        "purchases",
        "billingCustomers",
        "termsAcceptances",
        "auditEvents",
      ].sort(),
    );
    expect(doc.schema).toBe("tessera.export/1");
    expect(doc.user).toMatchObject({
      id: alice.user.id,
      email: "export-alice@example.com",
      hasPassword: true,
      displayName: "Name alice",
    });
    expect(keysOf(doc.user)).toEqual(
      [
        "id",
        "email",
        "emailVerifiedAt",
        "hasPassword",
        "passwordChangedAt",
        "displayName",
        "isAdmin",
        "adminRole",
        "isAnonymous",
        "createdAt",
        "updatedAt",
        "disabledAt",
      ].sort(),
    );
    expect(doc.emails).toEqual([
      expect.objectContaining({ address: "export-alice@example.com", primary: true }),
      expect.objectContaining({ address: "new-export-alice@example.com", primary: false, verifiedAt: null }),
    ]);
    expect(doc.linkedIdentities).toEqual([
      expect.objectContaining({ provider: "up-alice", providerName: "Upstream alice", subject: "sub-alice" }),
    ]);
    expect(doc.passkeys).toEqual([
      expect.objectContaining({ name: "Key alice", transports: ["internal"], backupEligible: false, backedUp: false }),
    ]);
    expect(keysOf(doc.passkeys[0])).toEqual(
      ["id", "name", "transports", "backupEligible", "backedUp", "createdAt", "lastUsedAt"].sort(),
    );
    expect(doc.rememberedConsents).toEqual([
      expect.objectContaining({ clientId: alice.clientId, clientName: "Game alice", scopes: ["openid", "roles"] }),
    ]);
    expect(doc.twoStep).toMatchObject({ totp: { enabled: true }, recoveryCodes: { total: 10, unused: 10 } });
    expect(keysOf(doc.twoStep.totp)).toEqual(["confirmedAt", "createdAt", "enabled"]);
    // the planted session and the one this request signed in with
    expect(doc.sessions).toHaveLength(2);
    expect(keysOf(doc.sessions[0])).toEqual(
      [
        "id",
        "createdAt",
        "authenticatedAt",
        "lastSeenAt",
        "expiresAt",
        "idleExpiresAt",
        "revokedAt",
        "revokedReason",
        "ip",
        "userAgent",
        "amr",
      ].sort(),
    );
    expect(doc.sessions.map((s: { userAgent: string }) => s.userAgent)).toContain("Agent alice");
    expect(doc.consents).toEqual([
      expect.objectContaining({
        clientId: alice.clientId,
        clientName: "Game alice",
        scope: "openid profile offline_access",
      }),
    ]);
    expect(doc.roles).toEqual([
      expect.objectContaining({ role: "role-alice", clientId: alice.clientId, grantedByAdmin: false }),
    ]);
    expect(doc.entitlements).toEqual([
      expect.objectContaining({ entitlement: "ent-alice", source: "purchase", clientIds: [alice.clientId] }),
    ]);
    expect(doc.purchases).toEqual([
      expect.objectContaining({ plan: "Plan alice", providerRef: "inv-alice", status: "Settled" }),
    ]);
    expect(doc.billingCustomers).toEqual([expect.objectContaining({ provider: "stripe", customerId: "cus_alice" })]);
    expect(doc.termsAcceptances).toEqual([
      expect.objectContaining({ termsVersion: "2026-01", privacyVersion: "p1", context: "register" }),
    ]);
    expect(doc.auditEvents.map((e: { event: string }) => e.event)).toEqual(
      expect.arrayContaining(["mfa.enrolment_started", "mfa.enabled"]),
    );
    expect(keysOf(doc.auditEvents[0])).toEqual(
      ["at", "event", "outcome", "byAdmin", "clientId", "sessionId", "ip", "userAgent", "details"].sort(),
    );
    // No secret of Alice's, and nothing of Bob's.
    for (const secret of alice.secrets) {
      expect(secret.length).toBeGreaterThan(4);
      expect(body).not.toContain(secret);
    }
    for (const value of [bob.user.id, "bob-bob", "export-bob@example.com", ...bob.secrets])
      expect(body).not.toContain(value);
    const [exported] = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "user.data_exported"));
    expect(exported).toMatchObject({
      userId: alice.user.id,
      outcome: "success",
      details: { reauth: "recent_sign_in" },
    });
  });

  it("needs a recent sign-in, or the password or a code typed again", async () => {
    const email = "export-stale@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    const b = new Browser(t.app);
    await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    t.clock.advance(301);
    const stale = await b.get("/api/v1/me/export");
    expect(stale.statusCode).toBe(401);
    expect(stale.json().error.code).toBe("STEP_UP_REQUIRED");
    expect(stale.body).not.toContain(email);
    const wrong = await b.json("POST", "/api/v1/me/export", { password: "wrong password" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe("INVALID_CREDENTIALS");
    const ok = await b.json("POST", "/api/v1/me/export", { password: PASSWORD });
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(ok.body).user.email).toBe(email);
    const anonymous = await new Browser(t.app).get("/api/v1/me/export");
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().error.code).toBe("UNAUTHENTICATED");
  });
});

describe("GET /admin/api/v1/users/:id/export", () => {
  it("gives an admin the same document, audited with the admin as actor", async () => {
    const admin = await seedAdmin(t.app, "export-admin@tessera.test");
    const target = await createUser(t.app, { email: "export-target@example.com", password: PASSWORD });
    const res = await t.app.inject({
      method: "GET",
      url: `/admin/api/v1/users/${target.id}/export`,
      headers: { authorization: admin.authorization },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ schema: "tessera.export/1", user: { id: target.id } });
    const rows = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "admin.user_exported"));
    expect(rows).toEqual([expect.objectContaining({ userId: target.id, actorId: admin.userId, outcome: "success" })]);
    const missing = await t.app.inject({
      method: "GET",
      url: "/admin/api/v1/users/00000000-0000-4000-8000-000000000000/export",
      headers: { authorization: admin.authorization },
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe("USER_NOT_FOUND");
    const noAdmin = await t.app.inject({ method: "GET", url: `/admin/api/v1/users/${target.id}/export` });
    expect(noAdmin.statusCode).toBe(401);
  });
});

describe("/account/export", () => {
  it("asks an older session for the password, then downloads the document", async () => {
    const email = "export-page@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    const b = new Browser(t.app);
    await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    t.clock.advance(301);
    const page = await b.get("/account/export");
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('name="confirm_password"');
    const refused = await b.post("/account/export", formFor(page.body, "/account/export"));
    expect(refused.statusCode).toBe(401);
    expect(refused.headers["content-type"]).toMatch(/^text\/html/);
    expect(refused.body).toContain("Enter your password to continue.");
    const again = await b.get("/account/export");
    const ok = await b.post("/account/export", {
      ...formFor(again.body, "/account/export"),
      confirm_password: PASSWORD,
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers["content-disposition"]).toMatch(/^attachment; filename="tessera-export-/);
    expect(JSON.parse(ok.body)).toMatchObject({ schema: "tessera.export/1", user: { email } });
    const noCsrf = await b.post("/account/export", { confirm_password: PASSWORD });
    expect(noCsrf.statusCode).toBe(403);
  });
});
