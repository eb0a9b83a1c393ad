import { auditEvents, backchannelLogoutJobs, sessions } from "@tessera/db";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "../helpers.ts";
import {
  buildOAuthApp,
  createUser,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "../oauth/helpers.ts";
import { seedAdmin } from "./helpers.ts";

let t: TestApp;
let auth: string;
let adminId: string;
let shop: TestClient;
let game: TestClient;
const BASE = "/admin/api/v1/users";

beforeAll(async () => {
  t = await buildOAuthApp();
  ({ authorization: auth, userId: adminId } = await seedAdmin(t.app));
  shop = await registerClient(t.app, { backchannelLogoutUri: "https://shop.example/bcl" });
  game = await registerClient(t.app, { name: "Game", backchannelLogoutUri: "https://game.example/bcl" });
});
afterAll(() => t.close());

const post = (url: string, headers: Record<string, string> = { authorization: auth }) =>
  t.app.inject({ method: "POST", url, headers });

describe("POST /admin/api/v1/users/:id/disable", () => {
  it("ends every session of the user for every app: refresh, access tokens, cookie, back-channel logouts; audited", async () => {
    const user = await createUser(t.app);
    const laptop = await sessionCookie(t.app, user);
    const phone = await sessionCookie(t.app, user);
    const a = await tokensFor(t.app, shop, laptop.cookie);
    const b = await tokensFor(t.app, game, laptop.cookie);
    const c = await tokensFor(t.app, shop, phone.cookie);

    const response = await post(`${BASE}/${user.id}/disable`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      id: user.id,
      email: user.email,
      disabled_at: t.clock.now().toISOString(),
      sessions_ended: 2,
    });

    for (const [client, tokens] of [
      [shop, a],
      [game, b],
      [shop, c],
    ] as const) {
      expect((await refresh(t.app, client, tokens.refresh_token)).json()).toEqual({
        error: "invalid_grant",
        error_description: "The refresh token has been revoked.",
      });
      const userinfo = await t.app.inject({
        method: "GET",
        url: "/userinfo",
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      expect(userinfo.statusCode).toBe(401);
    }
    const me = await t.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie: laptop.cookie } });
    expect(me.statusCode).toBe(401);
    const ended = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(ended.map((s) => s.revokedReason)).toEqual(["account_disabled", "account_disabled"]);
    // One back-channel logout per (session, client that took part): client-signed access JWTs stop at once.
    const jobs = await t.app.ctx.db
      .select()
      .from(backchannelLogoutJobs)
      .where(eq(backchannelLogoutJobs.userId, user.id));
    expect(jobs.map((j) => `${j.sessionId}:${j.logoutUri}`).sort()).toEqual(
      [
        `${laptop.session.id}:https://shop.example/bcl`,
        `${laptop.session.id}:https://game.example/bcl`,
        `${phone.session.id}:https://shop.example/bcl`,
      ].sort(),
    );
    const audits = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "admin.user_disabled"), eq(auditEvents.userId, user.id)));
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({
      outcome: "success",
      actorId: adminId,
      details: { via: "api-key", sessionsEnded: 2 },
    });

    // Idempotent: the original time stays, nothing more ends or is queued.
    t.clock.advance(60);
    const again = await post(`${BASE}/${user.id}/disable`);
    expect(again.json()).toMatchObject({ disabled_at: response.json().disabled_at, sessions_ended: 0 });
    expect(
      await t.app.ctx.db.select().from(backchannelLogoutJobs).where(eq(backchannelLogoutJobs.userId, user.id)),
    ).toHaveLength(3);
  });

  it("enable lets the user sign in again; the ended sessions stay ended", async () => {
    const user = await createUser(t.app);
    const before = await sessionCookie(t.app, user);
    await post(`${BASE}/${user.id}/disable`);
    const enabled = await post(`${BASE}/${user.id}/enable`);
    expect(enabled.statusCode).toBe(200);
    expect(enabled.json()).toEqual({ id: user.id, email: user.email, disabled_at: null });
    expect(
      (await t.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie: before.cookie } })).statusCode,
    ).toBe(401);
    const after = await sessionCookie(t.app, user);
    expect((await tokensFor(t.app, shop, after.cookie)).refresh_token).toMatch(/^tsr_/);
    const audits = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "admin.user_enabled"), eq(auditEvents.userId, user.id)));
    expect(audits).toHaveLength(1);
  });

  it("unknown, malformed and own ids; no credentials; wrong methods", async () => {
    for (const id of ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "%00"]) {
      const response = await post(`${BASE}/${id}/disable`);
      expect(response.statusCode).toBe(404);
      expect(response.json().error).toMatchObject({ code: "USER_NOT_FOUND", message: "No account with that id." });
    }
    const self = await post(`${BASE}/${adminId}/disable`);
    expect(self.statusCode).toBe(409);
    expect(self.json().error).toMatchObject({ code: "CONFLICT", message: "You cannot disable your own account." });
    const user = await createUser(t.app);
    const anonymous = await post(`${BASE}/${user.id}/disable`, {});
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().error.code).toBe("UNAUTHENTICATED");
    const body = await t.app.inject({
      method: "POST",
      url: `${BASE}/${user.id}/disable`,
      headers: { authorization: auth, "content-type": "application/json" },
      payload: JSON.stringify({ reason: "x" }),
    });
    expect(body.statusCode).toBe(400);
    const get = await t.app.inject({
      method: "GET",
      url: `${BASE}/${user.id}/disable`,
      headers: { authorization: auth },
    });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe("POST");
    const [row] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(row).toBeUndefined();
    expect((await post(`${BASE}/${user.id}/enable`)).json().disabled_at).toBeNull();
  });
});

describe("rate limit", () => {
  it("every admin route is limited per IP before authenticating (users and IP suspensions too)", async () => {
    const limited = await buildTestApp({ RATE_LIMIT_ADMIN: "2/60" });
    try {
      for (const [method, url] of [
        ["POST", `${BASE}/00000000-0000-4000-8000-000000000000/disable`],
        ["GET", "/admin/api/v1/ip-suspensions"],
        ["DELETE", "/admin/api/v1/ip-suspensions/203.0.113.9"],
      ] as const) {
        const statuses: number[] = [];
        for (let i = 0; i < 3; i++) {
          const res = await limited.app.inject({ method, url, headers: { authorization: "Bearer tak_guess" } });
          statuses.push(res.statusCode);
        }
        expect({ url, statuses }).toEqual({ url, statuses: [401, 401, 429] });
        limited.clock.advance(60);
      }
      // Only the requests that got past the limit were looked up and audited.
      const failures = await limited.app.ctx.db
        .select()
        .from(auditEvents)
        .where(eq(auditEvents.event, "admin.authentication_failed"));
      expect(failures).toHaveLength(6);
    } finally {
      await limited.close();
    }
  });
});
