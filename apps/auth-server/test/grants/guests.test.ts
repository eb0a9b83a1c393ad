import { users } from "@tessera/db";
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweep } from "../../src/libraries/jobs/sweeper.ts";
import type { TestApp } from "../helpers.ts";
import { basic, buildOAuthApp, createUser, FORM, form, registerClient, type TestClient } from "../oauth/helpers.ts";

const PASSWORD = "correct horse battery staple";

/** Guest accounts: runs on PGlite, and on real PostgreSQL with TEST_DATABASE_URL (the upgrade race above all). */
describe("guest accounts", () => {
  let t: TestApp;
  let game: TestClient;

  beforeAll(async () => {
    t = await buildOAuthApp({ GUEST_IDLE_DAYS: "3" });
    game = await registerClient(t.app, { name: "Tiny Racer", guestAccounts: true });
  });
  afterAll(() => t.close());

  const createGuest = (client: TestClient = game, body: Record<string, unknown> = {}) =>
    t.app.inject({
      method: "POST",
      url: "/api/v1/guest",
      headers: { authorization: basic(client.clientId, client.secret), "content-type": "application/json" },
      payload: JSON.stringify(body),
    });
  const upgrade = (accessToken: string, body: Record<string, unknown>) =>
    t.app.inject({
      method: "POST",
      url: "/api/v1/guest/upgrade",
      headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
      payload: JSON.stringify(body),
    });
  const refresh = (client: TestClient, refreshToken: string) =>
    t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ grant_type: "refresh_token", refresh_token: refreshToken }),
    });

  it("POST /api/v1/guest answers the normal token response with is_anonymous", async () => {
    const res = await createGuest(game, { scope: "openid profile email" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.json();
    expect(body).toMatchObject({ token_type: "Bearer", is_anonymous: true, scope: "openid profile email" });
    expect(body.refresh_token).toMatch(/^tsr_/);
    const idToken = decodeJwt(body.id_token);
    expect(idToken.is_anonymous).toBe(true);
    expect(idToken.email).toBeUndefined(); // the placeholder address is never shown
    expect(idToken.aud).toBe(game.clientId);
    const userinfo = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${body.access_token}` },
    });
    expect(userinfo.json()).toEqual({ sub: idToken.sub, is_anonymous: true });
    // The refresh token works like any other.
    expect((await refresh(game, body.refresh_token)).statusCode).toBe(200);
  });

  it("is per-client opt-in and client-authenticated", async () => {
    const web = await registerClient(t.app);
    const off = await createGuest(web);
    expect(off.statusCode).toBe(403);
    expect(off.json().error.code).toBe("GUEST_ACCOUNTS_DISABLED");
    const wrong = await createGuest({ ...game, secret: "wrong" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe("INVALID_CLIENT");
    const none = await t.app.inject({
      method: "POST",
      url: "/api/v1/guest",
      headers: { "content-type": "application/json" },
      payload: "{}",
    });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe("INVALID_CLIENT");
  });

  it("upgrades in place: same sub, session and refresh token keep working, the ID token loses is_anonymous", async () => {
    const guest = (await createGuest(game, { scope: "openid email" })).json();
    const sub = decodeJwt(guest.id_token).sub;
    const res = await upgrade(guest.access_token, { email: "Racer@Example.com", password: PASSWORD });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ sub, email: "racer@example.com", email_verified: false, is_anonymous: false });
    const refreshed = await refresh(game, guest.refresh_token);
    expect(refreshed.statusCode).toBe(200);
    const after = refreshed.json();
    expect(after.is_anonymous).toBeUndefined();
    expect(decodeJwt(after.id_token)).toMatchObject({ sub, email: "racer@example.com" });
    expect(decodeJwt(after.id_token).is_anonymous).toBeUndefined();
    // Upgraded once: a second upgrade is refused.
    const again = await upgrade(after.access_token, { email: "other@example.com", password: PASSWORD });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe("NOT_A_GUEST");
    // The new password signs in on the hosted API.
    const login = await t.app.inject({
      method: "POST",
      url: "/api/v1/login",
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({ email: "racer@example.com", password: PASSWORD }),
    });
    expect(login.statusCode).toBe(200);
  });

  it("an email that already has an account is never merged: GUEST_EMAIL_IN_USE, the guest stays a guest", async () => {
    const existing = await createUser(t.app, { email: "taken@example.com", password: PASSWORD });
    const guest = (await createGuest()).json();
    const res = await upgrade(guest.access_token, { email: "TAKEN@example.com", password: "another long passphrase" });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe("GUEST_EMAIL_IN_USE");
    const [row] = await t.app.ctx.db
      .select()
      .from(users)
      .where(eq(users.id, decodeJwt(guest.id_token).sub!));
    expect(row?.isAnonymous).toBe(true);
    const [owner] = await t.app.ctx.db.select().from(users).where(eq(users.id, existing.id));
    expect(owner?.passwordHash).toBe(existing.passwordHash);
    // The app then ends the guest: its session and tokens end, the account is gone.
    const ended = await t.app.inject({
      method: "DELETE",
      url: "/api/v1/guest",
      headers: { authorization: `Bearer ${guest.access_token}` },
    });
    expect(ended.statusCode).toBe(204);
    const refreshed = await refresh(game, guest.refresh_token);
    expect(refreshed.statusCode).toBe(400);
    expect(refreshed.json()).toMatchObject({ error: "invalid_grant" });
  });

  it("upgrade input is validated and needs a live guest token", async () => {
    const guest = (await createGuest()).json();
    const weak = await upgrade(guest.access_token, { email: "weak@example.com", password: "short" });
    expect(weak.statusCode).toBe(400);
    expect(weak.json().error.code).toBe("WEAK_PASSWORD");
    const bad = await upgrade(guest.access_token, { email: "not-an-email", password: PASSWORD });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe("VALIDATION_FAILED");
    const noToken = await upgrade("garbage", { email: "x@example.com", password: PASSWORD });
    expect(noToken.statusCode).toBe(401);
    expect(noToken.json().error.code).toBe("TOKEN_INVALID");
  });

  it("two upgrades of one guest racing: exactly one wins", async () => {
    const guest = (await createGuest()).json();
    const results = await Promise.all([
      upgrade(guest.access_token, { email: "first@example.com", password: PASSWORD }),
      upgrade(guest.access_token, { email: "second@example.com", password: PASSWORD }),
    ]);
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([200, 409]);
    const loser = results.find((r) => r.statusCode === 409)!;
    expect(loser.json().error.code).toBe("NOT_A_GUEST");
    const winner = results.find((r) => r.statusCode === 200)!.json();
    const [row] = await t.app.ctx.db
      .select()
      .from(users)
      .where(eq(users.id, decodeJwt(guest.id_token).sub!));
    expect(row).toMatchObject({ isAnonymous: false, email: winner.email });
  });

  it("two guests racing for one email: exactly one gets it", async () => {
    const [a, b] = [(await createGuest()).json(), (await createGuest()).json()];
    const results = await Promise.all([
      upgrade(a.access_token, { email: "contested@example.com", password: PASSWORD }),
      upgrade(b.access_token, { email: "contested@example.com", password: PASSWORD }),
    ]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.statusCode === 409)!.json().error.code).toBe("GUEST_EMAIL_IN_USE");
  });

  it("the sweeper deletes guests idle for GUEST_IDLE_DAYS, and keeps active ones", async () => {
    const idle = (await createGuest()).json();
    const active = (await createGuest()).json();
    t.clock.advance(2 * 86400);
    const kept = await refresh(game, active.refresh_token); // activity moves the session's last_seen_at
    expect(kept.statusCode).toBe(200);
    t.clock.advance(2 * 86400); // idle for 4 days (> GUEST_IDLE_DAYS=3), active for 2
    const report = await sweep(t.app.ctx);
    expect(report.deleted.guest_users).toBeGreaterThanOrEqual(1);
    const idleRows = await t.app.ctx.db
      .select()
      .from(users)
      .where(eq(users.id, decodeJwt(idle.id_token).sub!));
    expect(idleRows).toEqual([]);
    const activeRows = await t.app.ctx.db
      .select()
      .from(users)
      .where(eq(users.id, decodeJwt(active.id_token).sub!));
    expect(activeRows).toHaveLength(1);
  });
});
