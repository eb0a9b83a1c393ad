import { auditEvents, users } from "@tessera/db";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UserRow } from "../../src/libraries/sessions.ts";
import type { TestApp } from "../helpers.ts";
import {
  basic,
  buildOAuthApp,
  createUser,
  decodeJwt,
  FORM,
  form,
  refresh,
  registerClient,
  type TestClient,
} from "./helpers.ts";

let t: TestApp;
let game: TestClient;
let shop: TestClient;
let user: UserRow;
const PASSWORD = "correct horse battery staple";

beforeAll(async () => {
  t = await buildOAuthApp();
  game = await registerClient(t.app, { name: "Game", directSignIn: true });
  shop = await registerClient(t.app, { name: "Shop" });
  user = await createUser(t.app, { email: "player@example.com", password: PASSWORD });
});
afterAll(async () => t.close());

const signIn = (client: TestClient, fields: Record<string, string>, ip = "203.0.113.7") =>
  t.app.inject({
    method: "POST",
    url: "/api/v1/clients/sessions",
    headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
    payload: form(fields),
    remoteAddress: ip,
  });

describe("POST /api/v1/clients/sessions", () => {
  it("is off by default: unauthorized_client", async () => {
    const response = await signIn(shop, { username: user.email, password: PASSWORD });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: "unauthorized_client",
      error_description: "Direct sign-in is not enabled for this client.",
    });
  });

  it("returns the /token response in a new session, audited like the hosted form", async () => {
    const response = await signIn(game, { username: "Player@Example.com", password: PASSWORD, scope: "openid email" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["cache-control"]).toBe("no-store");
    const body = response.json();
    expect(body).toMatchObject({ token_type: "Bearer", scope: "openid email", expires_in: 300 });
    expect(decodeJwt(body.id_token).payload).toMatchObject({ sub: user.id, aud: game.clientId, email: user.email });
    expect((await refresh(t.app, game, body.refresh_token)).statusCode).toBe(200);
    const userinfo = await t.app.inject({
      method: "GET",
      url: "/userinfo",
      headers: { authorization: `Bearer ${body.access_token}` },
    });
    expect(userinfo.json()).toEqual({ sub: user.id, email: user.email, email_verified: true });
    const [event] = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "user.signed_in"), eq(auditEvents.userId, user.id)));
    expect(event).toMatchObject({ outcome: "success", clientId: game.clientId });
    expect(event?.details).toMatchObject({ via: "direct" });
  });

  it("wrong password and unknown email answer the same, and are audited", async () => {
    const wrong = await signIn(game, { username: user.email, password: "nope nope nope" }, "198.51.100.1");
    const unknown = await signIn(game, { username: "ghost@example.com", password: "nope nope nope" }, "198.51.100.2");
    for (const response of [wrong, unknown]) {
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({
        error: "invalid_grant",
        error_description: "The email or password is incorrect.",
      });
    }
    const failures = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "user.sign_in_failed"), eq(auditEvents.clientId, game.clientId)));
    expect(failures.length).toBeGreaterThanOrEqual(2);
  });

  it("a disabled account cannot sign in", async () => {
    const disabled = await createUser(t.app, { password: PASSWORD });
    await t.app.ctx.db.update(users).set({ disabledAt: t.clock.now() }).where(eq(users.id, disabled.id));
    const response = await signIn(game, { username: disabled.email, password: PASSWORD }, "198.51.100.3");
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: "invalid_grant",
      error_description: "This account is disabled.",
      tessera_code: "ACCOUNT_DISABLED",
    });
  });

  it("client authentication, parameters and content type are checked", async () => {
    const badSecret = await t.app.inject({
      method: "POST",
      url: "/api/v1/clients/sessions",
      headers: { ...FORM, authorization: basic(game.clientId, "wrong") },
      payload: form({ username: user.email, password: PASSWORD }),
    });
    expect(badSecret.statusCode).toBe(401);
    expect(badSecret.json().error).toBe("invalid_client");
    const missing = await signIn(game, { username: user.email });
    expect(missing.json()).toEqual({
      error: "invalid_request",
      error_description: "The password parameter is required.",
    });
    const dup = await t.app.inject({
      method: "POST",
      url: "/api/v1/clients/sessions",
      headers: { ...FORM, authorization: basic(game.clientId, game.secret) },
      payload: `username=a&username=b&password=x`,
    });
    expect(dup.json()).toEqual({
      error: "invalid_request",
      error_description: "The username parameter is included more than once.",
    });
    const json = await t.app.inject({
      method: "POST",
      url: "/api/v1/clients/sessions",
      headers: { "content-type": "application/json", authorization: basic(game.clientId, game.secret) },
      payload: JSON.stringify({ username: user.email, password: PASSWORD }),
    });
    expect(json.statusCode).toBe(400);
    expect(json.json().error).toBe("invalid_request");
    const get = await t.app.inject({ method: "GET", url: "/api/v1/clients/sessions" });
    expect(get.statusCode).toBe(405);
  });

  it("repeated failures are throttled like the hosted form: 429 slow_down with Retry-After", async () => {
    const victim = await createUser(t.app, { password: PASSWORD });
    let throttled: Awaited<ReturnType<typeof signIn>> | undefined;
    for (let i = 0; i < 30 && !throttled; i++) {
      const response = await signIn(game, { username: victim.email, password: `wrong-${i}-password` }, "192.0.2.9");
      if (response.statusCode === 429) throttled = response;
      else expect(response.statusCode).toBe(400);
    }
    expect(throttled?.json()).toMatchObject({ error: "slow_down", tessera_code: "LOGIN_THROTTLED" });
    expect(Number(throttled?.headers["retry-after"])).toBeGreaterThan(0);
    // Even the right password waits now.
    expect((await signIn(game, { username: victim.email, password: PASSWORD }, "192.0.2.9")).statusCode).toBe(429);
  });
});
