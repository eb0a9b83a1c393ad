import { sessions } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../src/libraries/crypto.ts";
import { endSessions, signIn } from "../../src/libraries/sessions.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, sessionCookie } from "./helpers.ts";

/**
 * SECURITY.md "Sessions and cookies": the session cookie's attributes as a browser receives them. Secure comes from
 * the explicit COOKIE_SECURE setting (both apps below run with NODE_ENV=test), and with it the cookie is host-only
 * (`__Host-`: Path=/, no Domain), so a sibling subdomain can neither set nor overwrite it.
 */
const PASSWORD = "correct horse battery staple";

async function signInOver(t: TestApp, email: string) {
  await createUser(t.app, { email, password: PASSWORD });
  return t.app.inject({
    method: "POST",
    url: "/api/v1/login",
    headers: { "content-type": "application/json", "user-agent": "vitest" },
    payload: JSON.stringify({ email, password: PASSWORD }),
  });
}

/** The raw Set-Cookie line for one cookie name (attributes exactly as sent). */
function setCookie(response: { headers: Record<string, unknown> }, name: string): string {
  const header = response.headers["set-cookie"];
  const lines = Array.isArray(header) ? header : [header];
  const line = lines.find((l): l is string => typeof l === "string" && l.startsWith(`${name}=`));
  if (!line) throw new Error(`no Set-Cookie for ${name} in ${JSON.stringify(header)}`);
  return line;
}

describe("COOKIE_SECURE=true", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildOAuthApp({ COOKIE_SECURE: "true", RATE_LIMIT_ENABLED: "false" });
  });
  afterAll(async () => t.close());

  it("sets __Host-tessera_session: 256-bit value, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain; stores only its hash", async () => {
    const response = await signInOver(t, "secure@example.com");
    expect(response.statusCode).toBe(200);
    const line = setCookie(response, "__Host-tessera_session");
    const value = /^__Host-tessera_session=([^;]*)/.exec(line)?.[1] as string;
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const attributes = line.split("; ").slice(1).sort();
    expect(attributes).toEqual([expect.stringMatching(/^Expires=/), "HttpOnly", "Path=/", "SameSite=Lax", "Secure"]);
    const [row] = await t.app.ctx.db
      .select()
      .from(sessions)
      .where(eq(sessions.tokenHash, sha256(value)));
    expect(row?.id).toBe(response.json().session.id);
    expect(JSON.stringify(row)).not.toContain(value);

    // A cookie without the prefix (e.g. planted by a sibling subdomain) is not read.
    const plain = await t.app.inject({
      method: "GET",
      url: "/api/v1/me",
      headers: { cookie: `tessera_session=${value}` },
    });
    expect(plain.statusCode).toBe(401);
    const prefixed = await t.app.inject({
      method: "GET",
      url: "/api/v1/me",
      headers: { cookie: `__Host-tessera_session=${value}` },
    });
    expect(prefixed.statusCode).toBe(200);

    // Clearing repeats Secure and Path=/, without which a browser refuses to touch a __Host- cookie.
    const logout = await t.app.inject({
      method: "POST",
      url: "/api/v1/logout",
      headers: { cookie: `__Host-tessera_session=${value}`, "content-type": "application/json" },
      payload: "{}",
    });
    expect(logout.statusCode).toBe(204);
    const cleared = setCookie(logout, "__Host-tessera_session");
    expect(cleared).toMatch(/^__Host-tessera_session=;/);
    expect(cleared.split("; ")).toEqual(expect.arrayContaining(["Path=/", "Secure", "HttpOnly", "SameSite=Lax"]));
    expect(cleared).toContain("Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  });
});

describe("COOKIE_SECURE=false with an https issuer", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildOAuthApp({ ISSUER: "https://id.example.com", COOKIE_SECURE: "false", RATE_LIMIT_ENABLED: "false" });
  });
  afterAll(async () => t.close());

  it("the explicit setting wins: no Secure, so no __Host- prefix", async () => {
    const response = await signInOver(t, "plain@example.com");
    expect(response.statusCode).toBe(200);
    const line = setCookie(response, "tessera_session");
    expect(line.split("; ")).not.toContain("Secure");
    expect(line.split("; ")).toEqual(expect.arrayContaining(["HttpOnly", "Path=/", "SameSite=Lax"]));
  });
});

describe("idle and absolute timeouts of the browser session, enforced on use", () => {
  let t: TestApp;
  const IDLE = 600;
  const ABSOLUTE = 1800;
  beforeAll(async () => {
    t = await buildOAuthApp({
      SESSION_IDLE_TTL_SECONDS: String(IDLE),
      SESSION_ABSOLUTE_TTL_SECONDS: String(ABSOLUTE),
      RATE_LIMIT_ENABLED: "false",
    });
  });
  afterAll(async () => t.close());

  const me = (cookie: string) => t.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } });

  it("idle: use moves the deadline; a session unused for longer than the idle timeout is refused", async () => {
    const { cookie } = await sessionCookie(t.app, await createUser(t.app));
    t.clock.advance(IDLE - 10);
    expect((await me(cookie)).statusCode).toBe(200);
    t.clock.advance(IDLE - 10);
    expect((await me(cookie)).statusCode).toBe(200);
    t.clock.advance(IDLE + 1);
    expect((await me(cookie)).statusCode).toBe(401);
    // And it stays refused: a refused use does not revive it.
    expect((await me(cookie)).statusCode).toBe(401);
  });

  it("idle: the deadline moves when it would move by a tenth of the idle TTL (at most 60 s), not on every use", async () => {
    const { cookie, session } = await sessionCookie(t.app, await createUser(t.app));
    const read = async () => (await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, session.id)))[0];
    const signedIn = await read();
    t.clock.advance(59);
    expect((await me(cookie)).statusCode).toBe(200);
    expect(await read()).toEqual(signedIn);
    t.clock.advance(1);
    expect((await me(cookie)).statusCode).toBe(200);
    expect((await read())?.idleExpiresAt).toEqual(new Date(t.clock.now().getTime() + IDLE * 1000));
  });

  it("absolute: however active, the session ends at its absolute expiry", async () => {
    const { cookie } = await sessionCookie(t.app, await createUser(t.app));
    let elapsed = 0;
    while (elapsed + IDLE / 2 < ABSOLUTE) {
      t.clock.advance(IDLE / 2);
      elapsed += IDLE / 2;
      expect((await me(cookie)).statusCode).toBe(200);
    }
    t.clock.advance(ABSOLUTE - elapsed);
    expect((await me(cookie)).statusCode).toBe(401);
  });
});

describe("signIn on a browser that already has a session", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildOAuthApp();
  });
  afterAll(async () => t.close());

  it("a session that ended after it was read is not extended: a new session starts", async () => {
    const user = await createUser(t.app);
    const { session: stale } = await sessionCookie(t.app, user);
    await endSessions(t.app.ctx, t.app.ctx.db, { ids: [stale.id] }, "signed_out");
    const meta = { ip: "127.0.0.1", userAgent: "vitest" };
    const again = await signIn(t.app.ctx, t.app.ctx.db, { userId: user.id, amr: ["pwd"], meta, existing: stale });
    expect(again.session.id).not.toBe(stale.id);
    expect(again.session.revokedAt).toBeNull();
    const me = await t.app.inject({
      method: "GET",
      url: "/api/v1/me",
      headers: { cookie: `tessera_session=${again.token}` },
    });
    expect(me.statusCode).toBe(200);
  });
});

describe("the shortest idle timeout (60 s): use keeps the session", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildOAuthApp({ SESSION_IDLE_TTL_SECONDS: "60", RATE_LIMIT_ENABLED: "false" });
  });
  afterAll(async () => t.close());
  const me = (cookie: string) => t.app.inject({ method: "GET", url: "/api/v1/me", headers: { cookie } });

  it("used every 50 s, it stays; left for 61 s, it ends", async () => {
    const { cookie } = await sessionCookie(t.app, await createUser(t.app));
    for (let i = 0; i < 4; i++) {
      t.clock.advance(50);
      expect((await me(cookie)).statusCode).toBe(200);
    }
    t.clock.advance(61);
    expect((await me(cookie)).statusCode).toBe(401);
  });
});
