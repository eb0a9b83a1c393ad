import { auditEvents, authorizationCodes, clients, refreshTokens, sessions, users } from "@tessera/db";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OAuthError } from "../../src/errors/index.ts";
import { disableClient, findActiveClient } from "../../src/libraries/clients/index.ts";
import { sha256 } from "../../src/libraries/crypto.ts";
import { refreshTokenGrant } from "../../src/libraries/oauth/grants.ts";
import { signIn, type UserRow } from "../../src/libraries/sessions.ts";
import type { TestApp } from "../helpers.ts";
import {
  authorizeQuery,
  basic,
  buildOAuthApp,
  createUser,
  decodeJwt,
  FORM,
  form,
  getCode,
  locationParams,
  pkce,
  REDIRECT,
  redeem,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "./helpers.ts";

let t: TestApp;
let client: TestClient;
let other: TestClient;
let user: UserRow;
let cookie: string;
const ISSUER = "http://localhost:3000";

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app);
  other = await registerClient(t.app, { name: "Game", redirectUris: [REDIRECT] });
});
afterAll(async () => t.close());
beforeEach(async () => {
  user = await createUser(t.app, { displayName: "Grace Hopper" });
  ({ cookie } = await sessionCookie(t.app, user));
});

const post = (payload: string, headers: Record<string, string> = {}) =>
  t.app.inject({ method: "POST", url: "/token", headers: { ...FORM, ...headers }, payload });

function expectOAuthError(
  response: Awaited<ReturnType<typeof post>>,
  status: number,
  error: string,
  description: string,
  tesseraCode?: string,
) {
  expect({ status: response.statusCode, body: response.json() }).toEqual({
    status,
    body: tesseraCode
      ? { error, error_description: description, tessera_code: tesseraCode }
      : { error, error_description: description },
  });
  expect(response.headers["cache-control"]).toBe("no-store");
  expect(response.headers.pragma).toBe("no-cache");
}

describe("authorization_code grant", () => {
  it("answers the token response with no-store, and the tokens carry the right claims", async () => {
    const { code, verifier } = await getCode(t.app, client, cookie);
    const response = await redeem(t.app, client, code, verifier);
    expect(response.statusCode).toBe(200);
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(response.headers.pragma).toBe("no-cache");
    expect(response.headers["content-type"]).toBe("application/json; charset=utf-8");
    const body = response.json();
    expect(Object.keys(body).sort()).toEqual([
      "access_token",
      "expires_in",
      "id_token",
      "refresh_token",
      "scope",
      "session_expires_at",
      "token_type",
    ]);
    expect(body.token_type).toBe("Bearer");
    expect(body.expires_in).toBe(300);
    expect(body.scope).toBe("openid profile email");
    expect(body.refresh_token).toMatch(/^tsr_[A-Za-z0-9_-]{43}$/);
    const [session] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(body.session_expires_at).toBe(Math.floor((session?.expiresAt.getTime() ?? 0) / 1000));

    const id = decodeJwt(body.id_token);
    expect(id.header).toMatchObject({ alg: "RS256", typ: "JWT" });
    expect(id.payload).toMatchObject({
      iss: ISSUER,
      sub: user.id,
      aud: client.clientId,
      nonce: "n-456",
      sid: session?.id,
      amr: ["pwd"],
      email: user.email,
      email_verified: true,
      name: "Grace Hopper",
      auth_time: Math.floor((session?.authenticatedAt.getTime() ?? 0) / 1000),
    });
    expect((id.payload.exp as number) - (id.payload.iat as number)).toBe(300);
    const at = decodeJwt(body.access_token);
    expect(at.header).toMatchObject({ typ: "at+jwt" });
    expect(at.payload).toMatchObject({
      iss: ISSUER,
      sub: user.id,
      aud: client.clientId,
      scope: "openid profile email",
    });

    // Only the SHA-256 of the refresh token is stored.
    const [stored] = await t.app.ctx.db
      .select()
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, sha256(body.refresh_token)));
    expect(stored?.clientId).toBe(client.client.id);
  });

  it("accepts client_secret_post", async () => {
    const { code, verifier } = await getCode(t.app, client, cookie);
    const response = await post(
      form({
        grant_type: "authorization_code",
        code,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
        client_id: client.clientId,
        client_secret: client.secret,
      }),
    );
    expect(response.statusCode).toBe(200);
  });

  it("a second redemption fails and revokes what the first issued", async () => {
    const { code, verifier } = await getCode(t.app, client, cookie);
    const first = await redeem(t.app, client, code, verifier);
    expect(first.statusCode).toBe(200);
    const userinfo = () =>
      t.app.inject({
        method: "GET",
        url: "/userinfo",
        headers: { authorization: `Bearer ${first.json().access_token}` },
      });
    expect((await userinfo()).statusCode).toBe(200);
    const second = await redeem(t.app, client, code, verifier);
    expectOAuthError(second, 400, "invalid_grant", "The authorization code has already been used.");
    expectOAuthError(
      await refresh(t.app, client, first.json().refresh_token),
      400,
      "invalid_grant",
      "The refresh token has been revoked.",
    );
    // The access token the first redemption issued stops too (it does not live on to its expiry).
    expect((await userinfo()).json()).toEqual({
      error: "invalid_token",
      error_description: "The access token is invalid, expired or revoked.",
    });
    const audits = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "token.code_replayed"), eq(auditEvents.userId, user.id)));
    expect(audits).toHaveLength(1);
  });

  it("PKCE: wrong verifier, missing verifier (downgrade), malformed verifier", async () => {
    const { code } = await getCode(t.app, client, cookie);
    const wrong = "a".repeat(43);
    expectOAuthError(
      await redeem(t.app, client, code, wrong),
      400,
      "invalid_grant",
      "The code_verifier does not match the code_challenge.",
    );
    // The code was exposed with a wrong verifier: it stays consumed.
    const again = await getCode(t.app, client, cookie);
    const noVerifier = await post(
      form({ grant_type: "authorization_code", code: again.code, redirect_uri: REDIRECT }),
      { authorization: basic(client.clientId, client.secret) },
    );
    expectOAuthError(noVerifier, 400, "invalid_request", "The code_verifier parameter is required (PKCE).");
    expectOAuthError(
      await redeem(t.app, client, again.code, "short"),
      400,
      "invalid_request",
      "The code_verifier must be 43-128 characters of [A-Za-z0-9-._~].",
    );
    // The plain method: sending the challenge itself as the verifier (plain semantics) does not work.
    const plainVerifier = pkce().verifier;
    const plainChallenge = await t.app.inject({
      method: "GET",
      url: `/authorize?${authorizeQuery(client, {}, plainVerifier)}`,
      headers: { cookie },
    });
    const plainCode = locationParams(plainChallenge).get("code") as string;
    expectOAuthError(
      await redeem(t.app, client, plainCode, plainVerifier),
      400,
      "invalid_grant",
      "The code_verifier does not match the code_challenge.",
    );
  });

  it("a code_verifier for a code made without a challenge is refused (the code is consumed)", async () => {
    // /authorize never makes one (PKCE is required there); this pins the /token side on its own.
    const code = "no-challenge-code-0123456789-0123456789-abcd";
    const [session] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    await t.app.ctx.db.insert(authorizationCodes).values({
      codeHash: sha256(code),
      clientId: client.client.id,
      userId: user.id,
      sessionId: session?.id as string,
      redirectUri: REDIRECT,
      codeChallenge: "",
      scope: "openid",
      authTime: t.clock.now(),
      createdAt: t.clock.now(),
      expiresAt: new Date(t.clock.now().getTime() + 60_000),
    });
    expectOAuthError(
      await redeem(t.app, client, code, pkce().verifier),
      400,
      "invalid_grant",
      "The authorization code was issued without a code_challenge.",
    );
    const [row] = await t.app.ctx.db.select().from(refreshTokens).where(eq(refreshTokens.userId, user.id));
    expect(row).toBeUndefined();
  });

  it("a code sent by another client, with another redirect_uri, or after 60 s is invalid_grant", async () => {
    const a = await getCode(t.app, client, cookie);
    expectOAuthError(
      await redeem(t.app, other, a.code, a.verifier),
      400,
      "invalid_grant",
      "The authorization code was not issued to this client.",
    );
    const b = await getCode(t.app, client, cookie);
    const wrongRedirect = await post(
      form({
        grant_type: "authorization_code",
        code: b.code,
        redirect_uri: "https://shop.example/cb2",
        code_verifier: b.verifier,
      }),
      { authorization: basic(client.clientId, client.secret) },
    );
    expectOAuthError(wrongRedirect, 400, "invalid_grant", "The redirect_uri does not match the authorization request.");
    const c = await getCode(t.app, client, cookie);
    t.clock.advance(61);
    expectOAuthError(
      await redeem(t.app, client, c.code, c.verifier),
      400,
      "invalid_grant",
      "The authorization code is invalid or has expired.",
    );
    expectOAuthError(
      await redeem(t.app, client, "made-up", "a".repeat(43)),
      400,
      "invalid_grant",
      "The authorization code is invalid or has expired.",
    );
  });

  it("a code whose session ended meanwhile is invalid_grant", async () => {
    const { code, verifier } = await getCode(t.app, client, cookie);
    await t.app.ctx.db.update(sessions).set({ revokedAt: t.clock.now() }).where(eq(sessions.userId, user.id));
    expectOAuthError(await redeem(t.app, client, code, verifier), 400, "invalid_grant", "The session has ended.");
  });
});

describe("client authentication and request shape", () => {
  it("wrong secret with Basic: 401 invalid_client with WWW-Authenticate", async () => {
    const response = await post(form({ grant_type: "refresh_token", refresh_token: "tsr_x" }), {
      authorization: basic(client.clientId, "wrong"),
    });
    expectOAuthError(response, 401, "invalid_client", "Client authentication failed.");
    expect(response.headers["www-authenticate"]).toBe('Basic realm="tessera", charset="UTF-8"');
    // Audited with who (the client_id as sent), where and how; never the secret.
    const audits = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "client.authentication_failed"), eq(auditEvents.clientId, client.clientId)));
    expect(audits.at(-1)).toMatchObject({
      outcome: "failure",
      ip: "127.0.0.1",
      details: { method: "client_secret_basic" },
    });
    expect(JSON.stringify(audits)).not.toContain('"wrong"');
  });

  it("wrong secret in the body: 401 invalid_client without a challenge", async () => {
    const response = await post(
      form({ grant_type: "refresh_token", refresh_token: "tsr_x", client_id: client.clientId, client_secret: "x" }),
    );
    expectOAuthError(response, 401, "invalid_client", "Client authentication failed.");
    expect(response.headers["www-authenticate"]).toBeUndefined();
  });

  it("no credentials, unknown and disabled clients: invalid_client", async () => {
    expectOAuthError(
      await post(form({ grant_type: "refresh_token", refresh_token: "tsr_x" })),
      401,
      "invalid_client",
      "Client authentication is required (client_secret_basic, client_secret_post, or client_id for public clients).",
    );
    expectOAuthError(
      await post(form({ grant_type: "refresh_token", refresh_token: "x" }), { authorization: basic("nope", "x") }),
      401,
      "invalid_client",
      "Client authentication failed.",
    );
    const doomed = await registerClient(t.app);
    await disableClient(t.app.ctx, doomed.clientId);
    expectOAuthError(
      await post(form({ grant_type: "refresh_token", refresh_token: "x" }), {
        authorization: basic(doomed.clientId, doomed.secret),
      }),
      401,
      "invalid_client",
      "Client authentication failed.",
    );
  });

  it("both authentication methods at once, or mismatched client ids: invalid_request", async () => {
    expectOAuthError(
      await post(form({ grant_type: "refresh_token", refresh_token: "x", client_secret: client.secret }), {
        authorization: basic(client.clientId, client.secret),
      }),
      400,
      "invalid_request",
      "Use one client authentication method, not Basic and client_secret.",
    );
    expectOAuthError(
      await post(form({ grant_type: "refresh_token", refresh_token: "x", client_id: other.clientId }), {
        authorization: basic(client.clientId, client.secret),
      }),
      400,
      "invalid_request",
      "The client_id does not match the Authorization header.",
    );
    expectOAuthError(
      await post(form({ grant_type: "refresh_token" }), { authorization: "Basic !!!notbase64" }),
      400,
      "invalid_request",
      "The Authorization header is malformed.",
    );
  });

  it("a grant type the client is not registered for: unauthorized_client", async () => {
    const codeOnly = await registerClient(t.app);
    await t.app.ctx.db
      .update(clients)
      .set({ grantTypes: ["authorization_code"] })
      .where(eq(clients.id, codeOnly.client.id));
    const tokens = await tokensFor(t.app, codeOnly, cookie);
    expectOAuthError(
      await refresh(t.app, codeOnly, tokens.refresh_token),
      400,
      "unauthorized_client",
      "This client may not use the refresh_token grant.",
    );
  });

  it("grant types: missing, unsupported (password, implicit), not enabled for the client (client_credentials, device)", async () => {
    const auth = { authorization: basic(client.clientId, client.secret) };
    expectOAuthError(await post(form({}), auth), 400, "invalid_request", "The grant_type parameter is required.");
    for (const grant of ["password", "implicit"]) {
      expectOAuthError(
        await post(form({ grant_type: grant }), auth),
        400,
        "unsupported_grant_type",
        "Supported grant types: authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code.",
      );
    }
    for (const grant of ["client_credentials", "urn:ietf:params:oauth:grant-type:device_code"]) {
      expectOAuthError(
        await post(form({ grant_type: grant }), auth),
        400,
        "unauthorized_client",
        `This client may not use the ${grant} grant.`,
      );
    }
  });

  it("duplicated parameters, oversized values, JSON and other content types, wrong methods: 4xx, never 500", async () => {
    const auth = { authorization: basic(client.clientId, client.secret) };
    expectOAuthError(
      await post("grant_type=refresh_token&grant_type=authorization_code", auth),
      400,
      "invalid_request",
      "The grant_type parameter is included more than once.",
    );
    expectOAuthError(
      await post(form({ grant_type: "refresh_token", refresh_token: "x".repeat(600) }), auth),
      400,
      "invalid_request",
      "The refresh_token parameter is too long.",
    );
    const json = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { "content-type": "application/json", ...auth },
      payload: JSON.stringify({ grant_type: "refresh_token" }),
    });
    expectOAuthError(json, 400, "invalid_request", "Send the parameters as application/x-www-form-urlencoded.");
    const text = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { "content-type": "text/plain", ...auth },
      payload: "grant_type=refresh_token",
    });
    expect(text.statusCode).toBe(400);
    expect(text.json().error).toBe("invalid_request");
    const huge = await post(`grant_type=refresh_token&x=${"a".repeat(70 * 1024)}`, auth);
    expect(huge.statusCode).toBe(400);
    expect(huge.json().error).toBe("invalid_request");
    const get = await t.app.inject({ method: "GET", url: "/token" });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe("POST, OPTIONS");
    expect(get.json()).toEqual({ error: "invalid_request", error_description: "GET is not allowed here; use POST." });
  });
});

describe("refresh_token grant", () => {
  it("rotates: a new token each time, the session's idle deadline moves, expiry is the session's", async () => {
    const first = await tokensFor(t.app, client, cookie);
    t.clock.advance(3600);
    const response = await refresh(t.app, client, first.refresh_token);
    expect(response.statusCode).toBe(200);
    expect(response.headers["cache-control"]).toBe("no-store");
    const second = response.json();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.session_expires_at).toBe(first.session_expires_at);
    expect(decodeJwt(second.id_token).payload.nonce).toBeUndefined();
    const [session] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(session?.idleExpiresAt.getTime()).toBe(
      t.clock.now().getTime() + t.app.ctx.config.sessions.idleTtlSeconds * 1000,
    );
    const [retired] = await t.app.ctx.db
      .select()
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, sha256(first.refresh_token)));
    expect(retired?.rotatedAt).not.toBeNull();
  });

  it("writes the session only when its idle deadline would move by a step (a tenth of the idle TTL, at most 60 s)", async () => {
    const first = await tokensFor(t.app, client, cookie);
    const read = async () => {
      const [row] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
      return { lastSeenAt: row?.lastSeenAt, idleExpiresAt: row?.idleExpiresAt };
    };
    t.clock.advance(60);
    const slidAt = t.clock.now();
    const second = await refresh(t.app, client, first.refresh_token);
    expect(second.statusCode).toBe(200);
    const slid = await read();
    expect(slid).toEqual({
      lastSeenAt: slidAt,
      idleExpiresAt: new Date(slidAt.getTime() + t.app.ctx.config.sessions.idleTtlSeconds * 1000),
    });
    t.clock.advance(59);
    const third = await refresh(t.app, client, second.json().refresh_token);
    expect(third.statusCode).toBe(200);
    expect(await read()).toEqual(slid);
    t.clock.advance(1);
    expect((await refresh(t.app, client, third.json().refresh_token)).statusCode).toBe(200);
    expect(await read()).toEqual({
      lastSeenAt: t.clock.now(),
      idleExpiresAt: new Date(t.clock.now().getTime() + t.app.ctx.config.sessions.idleTtlSeconds * 1000),
    });
  });

  it("within the grace window, the immediately previous token gets invalid_grant without revoking anything", async () => {
    const first = await tokensFor(t.app, client, cookie);
    const second = (await refresh(t.app, client, first.refresh_token)).json();
    t.clock.advance(5);
    expectOAuthError(
      await refresh(t.app, client, first.refresh_token),
      400,
      "invalid_grant",
      "The refresh token was just rotated by a concurrent request; use the newest refresh token.",
      "REFRESH_ROTATED_CONCURRENTLY",
    );
    // The live token still works: nothing was revoked.
    expect((await refresh(t.app, client, second.refresh_token)).statusCode).toBe(200);
  });

  it("outside the grace window, reuse ends the whole session (every client), is audited, answers invalid_grant", async () => {
    const a = await tokensFor(t.app, client, cookie);
    const b = await tokensFor(t.app, other, cookie);
    const a2 = (await refresh(t.app, client, a.refresh_token)).json();
    t.clock.advance(11);
    expectOAuthError(
      await refresh(t.app, client, a.refresh_token),
      400,
      "invalid_grant",
      "The refresh token was already used; the session has been ended.",
    );
    expectOAuthError(
      await refresh(t.app, client, a2.refresh_token),
      400,
      "invalid_grant",
      "The refresh token has been revoked.",
    );
    expectOAuthError(
      await refresh(t.app, other, b.refresh_token),
      400,
      "invalid_grant",
      "The refresh token has been revoked.",
    );
    const [session] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(session?.revokedReason).toBe("refresh_token_reuse");
    const audits = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "token.reuse_detected"), eq(auditEvents.userId, user.id)));
    expect(audits).toHaveLength(1);
    expect(audits[0]?.clientId).toBe(client.clientId);
    // The browser's Tessera session is gone too: /authorize asks for a sign-in again.
    const authorize = await t.app.inject({
      method: "GET",
      url: `/authorize?client_id=${client.clientId}&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code&scope=openid&code_challenge=${"a".repeat(43)}&code_challenge_method=S256`,
      headers: { cookie },
    });
    expect(new URL(authorize.headers.location as string, ISSUER).pathname).toBe("/login");
  });

  it("inside the grace window, a token two rotations back is reuse (not the immediately previous one)", async () => {
    const a = await tokensFor(t.app, client, cookie);
    const a2 = (await refresh(t.app, client, a.refresh_token)).json();
    (await refresh(t.app, client, a2.refresh_token)).json();
    expectOAuthError(
      await refresh(t.app, client, a.refresh_token),
      400,
      "invalid_grant",
      "The refresh token was already used; the session has been ended.",
    );
  });

  it("another client's token: invalid_grant, and nothing is revoked", async () => {
    const a = await tokensFor(t.app, client, cookie);
    expectOAuthError(
      await refresh(t.app, other, a.refresh_token),
      400,
      "invalid_grant",
      "The refresh token was not issued to this client.",
    );
    expect((await refresh(t.app, client, a.refresh_token)).statusCode).toBe(200);
  });

  it("a disabled user, a disabled client, an ended or expired session cannot refresh", async () => {
    const a = await tokensFor(t.app, client, cookie);
    await t.app.ctx.db.update(users).set({ disabledAt: t.clock.now() }).where(eq(users.id, user.id));
    expectOAuthError(
      await refresh(t.app, client, a.refresh_token),
      400,
      "invalid_grant",
      "The user account is disabled.",
    );
    await t.app.ctx.db.update(users).set({ disabledAt: null }).where(eq(users.id, user.id));

    const doomed = await registerClient(t.app);
    const d = await tokensFor(t.app, doomed, cookie);
    await disableClient(t.app.ctx, doomed.clientId);
    expect((await refresh(t.app, doomed, d.refresh_token)).statusCode).toBe(401);

    t.clock.advance(t.app.ctx.config.sessions.idleTtlSeconds + 1);
    expectOAuthError(await refresh(t.app, client, a.refresh_token), 400, "invalid_grant", "The session has expired.");

    // Ended (the session row alone: the check does not rely on its tokens having been revoked with it).
    const fresh = await sessionCookie(t.app, user);
    const e = await tokensFor(t.app, client, fresh.cookie);
    await t.app.ctx.db.update(sessions).set({ revokedAt: t.clock.now() }).where(eq(sessions.id, fresh.session.id));
    expectOAuthError(await refresh(t.app, client, e.refresh_token), 400, "invalid_grant", "The session has ended.");
  });

  it("the absolute expiry applies to every client's chain at once, however active", async () => {
    const a = await tokensFor(t.app, client, cookie);
    const b = await tokensFor(t.app, other, cookie);
    expect(a.session_expires_at).toBe(b.session_expires_at);
    let tokenA = a.refresh_token;
    const step = t.app.ctx.config.sessions.idleTtlSeconds - 60;
    const absolute = t.app.ctx.config.sessions.absoluteTtlSeconds;
    for (let elapsed = 0; elapsed + step < absolute; elapsed += step) {
      t.clock.advance(step);
      const r = await refresh(t.app, client, tokenA);
      expect(r.statusCode).toBe(200);
      tokenA = r.json().refresh_token;
    }
    t.clock.advance(step);
    expectOAuthError(await refresh(t.app, client, tokenA), 400, "invalid_grant", "The session has expired.");
    expectOAuthError(await refresh(t.app, other, b.refresh_token), 400, "invalid_grant", "The session has expired.");
  });

  it("an interactive sign-in on the browser extends the session, and so every client's chain in it", async () => {
    const a = await tokensFor(t.app, client, cookie);
    const b = await tokensFor(t.app, other, cookie);
    const [before] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    t.clock.advance(t.app.ctx.config.sessions.idleTtlSeconds - 60);
    // The user signs in again on Tessera (same browser, same user): same session, new deadlines.
    const again = await signIn(t.app.ctx, t.app.ctx.db, {
      userId: user.id,
      amr: ["pwd"],
      meta: { ip: "127.0.0.1", userAgent: "vitest" },
      existing: before ?? null,
    });
    expect(again.session.id).toBe(before?.id);
    t.clock.advance(120);
    const ra = await refresh(t.app, client, a.refresh_token);
    const rb = await refresh(t.app, other, b.refresh_token);
    expect([ra.statusCode, rb.statusCode]).toEqual([200, 200]);
    expect(ra.json().session_expires_at).toBe(Math.floor(again.session.expiresAt.getTime() / 1000));
    expect(rb.json().session_expires_at).toBe(ra.json().session_expires_at);
    expect(ra.json().session_expires_at).toBeGreaterThan(a.session_expires_at);
  });

  it("a client's access-token lifetime override applies, capped at the longest any Tessera JWT may live", async () => {
    const short = await registerClient(t.app);
    await t.app.ctx.db.update(clients).set({ accessTokenTtlSeconds: 60 }).where(eq(clients.id, short.client.id));
    expect((await tokensFor(t.app, short, cookie)).expires_in).toBe(60);
    const long = await registerClient(t.app);
    await t.app.ctx.db.update(clients).set({ accessTokenTtlSeconds: 86_400 }).where(eq(clients.id, long.client.id));
    const tokens = await tokensFor(t.app, long, cookie);
    expect(tokens.expires_in).toBe(300);
    const { payload } = decodeJwt(tokens.access_token);
    expect((payload.exp as number) - (payload.iat as number)).toBe(300);
  });

  it("the ID token is signed with the client's registered algorithm (ES256, EdDSA)", async () => {
    for (const alg of ["ES256", "EdDSA"] as const) {
      const special = await registerClient(t.app, { idTokenSignedResponseAlg: alg });
      const tokens = await tokensFor(t.app, special, cookie);
      expect(decodeJwt(tokens.id_token).header.alg).toBe(alg);
      const userinfo = await t.app.inject({
        method: "GET",
        url: "/userinfo",
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      expect(userinfo.statusCode).toBe(200);
    }
  });

  it("scope may be narrowed, never widened", async () => {
    const a = await tokensFor(t.app, client, cookie);
    const narrowed = await post(
      form({ grant_type: "refresh_token", refresh_token: a.refresh_token, scope: "openid" }),
      {
        authorization: basic(client.clientId, client.secret),
      },
    );
    expect(narrowed.statusCode).toBe(200);
    expect(narrowed.json().scope).toBe("openid");
    expect(decodeJwt(narrowed.json().access_token).payload.scope).toBe("openid");
    expect(decodeJwt(narrowed.json().id_token).payload.email).toBeUndefined();
    // RFC 6749 6: the successor keeps the presented token's scope; only this access token was narrowed.
    const [successor] = await t.app.ctx.db
      .select()
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, sha256(narrowed.json().refresh_token)));
    expect(successor?.scope).toBe("openid profile email");
    const back = await post(
      form({ grant_type: "refresh_token", refresh_token: narrowed.json().refresh_token, scope: "openid email" }),
      { authorization: basic(client.clientId, client.secret) },
    );
    expect(back.statusCode).toBe(200);
    expect(back.json().scope).toBe("openid email");
    const widened = await post(
      form({ grant_type: "refresh_token", refresh_token: back.json().refresh_token, scope: "openid offline_access" }),
      { authorization: basic(client.clientId, client.secret) },
    );
    expectOAuthError(widened, 400, "invalid_scope", "The requested scope exceeds the scope originally granted.");
    const unchanged = await refresh(t.app, client, back.json().refresh_token);
    expect(unchanged.json().scope).toBe("openid profile email");
  });

  it("a chain keeps two rows however often it rotates; a token several generations back is still reuse", async () => {
    const first = await tokensFor(t.app, client, cookie);
    let latest = first;
    for (let i = 0; i < 4; i++) latest = (await refresh(t.app, client, latest.refresh_token)).json();
    const rows = await t.app.ctx.db
      .select()
      .from(refreshTokens)
      .where(and(eq(refreshTokens.userId, user.id), eq(refreshTokens.clientId, client.client.id)));
    // The live token and the one it replaced; the first three generations are gone.
    expect(rows.map((r) => r.tokenHash).sort()).toEqual(
      [sha256(latest.refresh_token), rows.find((r) => r.rotatedAt)?.tokenHash].sort(),
    );
    expect(rows.filter((r) => r.rotatedAt)).toHaveLength(1);
    expect(rows.find((r) => r.tokenHash === sha256(first.refresh_token))).toBeUndefined();
    // The first token (four rotations back, its row deleted) is recognized by its chain: reuse ends the session.
    t.clock.advance(11);
    expectOAuthError(
      await refresh(t.app, client, first.refresh_token),
      400,
      "invalid_grant",
      "The refresh token was already used; the session has been ended.",
    );
    expectOAuthError(
      await refresh(t.app, client, latest.refresh_token),
      400,
      "invalid_grant",
      "The refresh token has been revoked.",
    );
    const [session] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(session?.revokedReason).toBe("refresh_token_reuse");
  });

  it("an old generation sent by another client ends nothing; a token shaped like one but of no chain is invalid", async () => {
    const first = await tokensFor(t.app, client, cookie);
    const second = (await refresh(t.app, client, first.refresh_token)).json();
    const third = (await refresh(t.app, client, second.refresh_token)).json();
    t.clock.advance(11);
    expectOAuthError(
      await refresh(t.app, other, first.refresh_token),
      400,
      "invalid_grant",
      "The refresh token was not issued to this client.",
    );
    const random = `tsr_${Buffer.alloc(32, 7).toString("base64url")}`;
    expectOAuthError(await refresh(t.app, client, random), 400, "invalid_grant", "The refresh token is invalid.");
    expect((await refresh(t.app, client, third.refresh_token)).statusCode).toBe(200);
  });

  it("the grace window is judged by when the request arrived, not when it was processed", async () => {
    const first = await tokensFor(t.app, client, cookie);
    const rotated = await refresh(t.app, client, first.refresh_token);
    expect(rotated.statusCode).toBe(200);
    const client0 = await findActiveClient(t.app.ctx.db, client.clientId);
    if (!client0) throw new Error("no client");
    const meta = { ip: "127.0.0.1", userAgent: "vitest" };
    // A concurrent request arrived 5 s after the rotation, then waited 55 s (say, on a database outage).
    const arrived = new Date(t.clock.now().getTime() + 5_000);
    t.clock.advance(60);
    const late = await refreshTokenGrant(
      t.app.ctx,
      client0,
      { refreshToken: first.refresh_token, scope: undefined, receivedAt: arrived },
      meta,
    ).catch((error: unknown) => error);
    expect(late).toBeInstanceOf(OAuthError);
    expect((late as OAuthError).tesseraCode).toBe("REFRESH_ROTATED_CONCURRENTLY");
    // Nothing was revoked: the live token still works.
    const live = await refresh(t.app, client, rotated.json().refresh_token);
    expect(live.statusCode).toBe(200);
    // Arriving 11 s after the rotation is outside the window: reuse, the session ends.
    const reuse = await refreshTokenGrant(
      t.app.ctx,
      client0,
      {
        refreshToken: rotated.json().refresh_token,
        scope: undefined,
        receivedAt: new Date(t.clock.now().getTime() + 11_000),
      },
      meta,
    ).catch((error: unknown) => error);
    expect((reuse as OAuthError).description).toBe("The refresh token was already used; the session has been ended.");
  });

  it("unknown and missing refresh tokens", async () => {
    expectOAuthError(await refresh(t.app, client, "tsr_nope"), 400, "invalid_grant", "The refresh token is invalid.");
    expectOAuthError(
      await post(form({ grant_type: "refresh_token" }), { authorization: basic(client.clientId, client.secret) }),
      400,
      "invalid_request",
      "The refresh_token parameter is required.",
    );
  });
});
