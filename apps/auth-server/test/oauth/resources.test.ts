import { createHmac } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { disableClient } from "../../src/libraries/clients/index.ts";
import { publicJwks } from "../../src/libraries/keys/index.ts";
import { endSessions, type SessionRow, type UserRow } from "../../src/libraries/sessions.ts";
import { markUserDisabled, markUserEnabled } from "../../src/queries/user-status.ts";
import type { TestApp } from "../helpers.ts";
import {
  basic,
  buildOAuthApp,
  createUser,
  decodeJwt,
  FORM,
  form,
  getCode,
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
let session: SessionRow;
let cookie: string;
let tokens: Awaited<ReturnType<typeof tokensFor>>;
const ISSUER = "http://localhost:3000";

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app);
  other = await registerClient(t.app, { name: "Other" });
});
afterAll(async () => t.close());
beforeEach(async () => {
  user = await createUser(t.app, { displayName: "Katherine Johnson" });
  ({ cookie, session } = await sessionCookie(t.app, user));
  tokens = await tokensFor(t.app, client, cookie);
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

function userinfo(token: string, method: "GET" | "POST" = "GET") {
  return t.app.inject({ method, url: "/userinfo", headers: { authorization: `Bearer ${token}` } });
}

function expectInvalidToken(response: Awaited<ReturnType<typeof userinfo>>) {
  expect(response.statusCode).toBe(401);
  expect(response.json()).toEqual({
    error: "invalid_token",
    error_description: "The access token is invalid, expired or revoked.",
  });
  expect(response.headers["www-authenticate"]).toBe(
    'Bearer realm="tessera", error="invalid_token", error_description="The access token is invalid, expired or revoked."',
  );
}

describe("/userinfo", () => {
  it("GET and POST with a bearer token return the scoped claims", async () => {
    for (const method of ["GET", "POST"] as const) {
      const response = await userinfo(tokens.access_token, method);
      expect(response.statusCode).toBe(200);
      expect(response.headers["cache-control"]).toBe("no-store");
      expect(response.json()).toEqual({
        sub: user.id,
        email: user.email,
        email_verified: true,
        name: "Katherine Johnson",
      });
    }
  });

  it("the token in a form body (RFC 6750 2.2) works; in both places it is invalid_request", async () => {
    const body = await t.app.inject({
      method: "POST",
      url: "/userinfo",
      headers: FORM,
      payload: form({ access_token: tokens.access_token }),
    });
    expect(body.statusCode).toBe(200);
    const both = await t.app.inject({
      method: "POST",
      url: "/userinfo",
      headers: { ...FORM, authorization: `Bearer ${tokens.access_token}` },
      payload: form({ access_token: tokens.access_token }),
    });
    expect(both.statusCode).toBe(400);
    expect(both.json()).toEqual({
      error: "invalid_request",
      error_description: "Send the access token in one place only.",
    });
  });

  it("only the scopes granted: openid alone gives sub only", async () => {
    const narrow = await t.app.inject({
      method: "POST",
      url: "/token",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({ grant_type: "refresh_token", refresh_token: tokens.refresh_token, scope: "openid" }),
    });
    expect((await userinfo(narrow.json().access_token)).json()).toEqual({ sub: user.id });
  });

  it("no token: 401 with a bare Bearer challenge", async () => {
    const response = await t.app.inject({ method: "GET", url: "/userinfo" });
    expect(response.statusCode).toBe(401);
    expect(response.headers["www-authenticate"]).toBe('Bearer realm="tessera"');
    expect(response.json()).toEqual({
      error: "invalid_token",
      error_description: "A bearer access token is required.",
    });
  });

  it("forged tokens: alg none, HS256 (alg confusion), tampered payload, unknown kid, ID token, garbage", async () => {
    const { header, payload } = decodeJwt(tokens.access_token);
    const [h, p, s] = tokens.access_token.split(".");
    const none = `${b64({ ...header, alg: "none" })}.${p}.`;
    const jwk = (await publicJwks(t.app.ctx)).keys[0];
    const hsHeader = b64({ alg: "HS256", kid: jwk?.kid, typ: "at+jwt" });
    const hs = `${hsHeader}.${p}.${createHmac("sha256", JSON.stringify(jwk)).update(`${hsHeader}.${p}`).digest("base64url")}`;
    const tampered = `${h}.${b64({ ...payload, sub: "00000000-0000-0000-0000-000000000000" })}.${s}`;
    const unknownKid = `${b64({ ...header, kid: "nope" })}.${p}.${s}`;
    for (const forged of [none, hs, tampered, unknownKid, tokens.id_token, "garbage", "a.b.c", "x".repeat(20_000)]) {
      expectInvalidToken(await userinfo(forged));
    }
  });

  it("expired tokens and tokens of an ended session stop working", async () => {
    const other = await tokensFor(t.app, client, cookie);
    // 300 s lifetime plus the verifier's 5 s clock tolerance.
    t.clock.advance(306);
    expectInvalidToken(await userinfo(other.access_token));
    const fresh = (await refresh(t.app, client, tokens.refresh_token)).json();
    expect((await userinfo(fresh.access_token)).statusCode).toBe(200);
    await endSessions(t.app.ctx, t.app.ctx.db, { ids: [session.id] }, "test");
    expectInvalidToken(await userinfo(fresh.access_token));
  });

  it("tokens of a disabled user or a disabled client stop working (checked on every use)", async () => {
    expect((await userinfo(tokens.access_token)).statusCode).toBe(200);
    // Through the write path (it tells the access-token owners cache, queries/owners-cache.ts), not a bare UPDATE.
    await markUserDisabled(t.app.ctx.db, user.id, t.clock.now());
    expectInvalidToken(await userinfo(tokens.access_token));
    await markUserEnabled(t.app.ctx.db, user.id, t.clock.now());
    expect((await userinfo(tokens.access_token)).statusCode).toBe(200);
    const doomed = await registerClient(t.app, { name: "Doomed" });
    const theirs = await tokensFor(t.app, doomed, cookie);
    expect((await userinfo(theirs.access_token)).statusCode).toBe(200);
    await disableClient(t.app.ctx, doomed.clientId);
    expectInvalidToken(await userinfo(theirs.access_token));
  });

  it("wrong methods: 405", async () => {
    const response = await t.app.inject({ method: "DELETE", url: "/userinfo" });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe("GET, HEAD, POST, OPTIONS");
  });
});

describe("/introspect (RFC 7662)", () => {
  const introspect = (as: TestClient, token: string) =>
    t.app.inject({
      method: "POST",
      url: "/introspect",
      headers: { ...FORM, authorization: basic(as.clientId, as.secret) },
      payload: form({ token }),
    });

  it("a live refresh token, to its own client", async () => {
    const response = await introspect(client, tokens.refresh_token);
    expect(response.statusCode).toBe(200);
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(response.json()).toMatchObject({
      active: true,
      token_type: "refresh_token",
      client_id: client.clientId,
      sub: user.id,
      scope: "openid profile email",
      iss: ISSUER,
      sid: session.id,
    });
  });

  it("a live access token, to its own client", async () => {
    const response = await introspect(client, tokens.access_token);
    expect(response.json()).toMatchObject({
      active: true,
      token_type: "Bearer",
      client_id: client.clientId,
      sub: user.id,
      aud: client.clientId,
    });
  });

  it("inactive: another client's token, rotated, unknown, forged", async () => {
    expect((await introspect(other, tokens.refresh_token)).json()).toEqual({ active: false });
    expect((await introspect(other, tokens.access_token)).json()).toEqual({ active: false });
    const before = tokens.refresh_token;
    await refresh(t.app, client, before);
    expect((await introspect(client, before)).json()).toEqual({ active: false });
    expect((await introspect(client, "tsr_unknown")).json()).toEqual({ active: false });
    expect((await introspect(client, "x.y.z")).json()).toEqual({ active: false });
  });

  it("requires client authentication and a token", async () => {
    const anonymous = await t.app.inject({
      method: "POST",
      url: "/introspect",
      headers: FORM,
      payload: form({ token: tokens.refresh_token }),
    });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().error).toBe("invalid_client");
    const missing = await t.app.inject({
      method: "POST",
      url: "/introspect",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: form({}),
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toEqual({ error: "invalid_request", error_description: "The token parameter is required." });
  });
});

describe("/revoke (RFC 7009)", () => {
  const revoke = (as: TestClient, token: string, extra: Record<string, string> = {}) =>
    t.app.inject({
      method: "POST",
      url: "/revoke",
      headers: { ...FORM, authorization: basic(as.clientId, as.secret) },
      payload: form({ token, ...extra }),
    });

  it("revoking a refresh token ends that client's chain, not the other apps of the session", async () => {
    const otherTokens = await tokensFor(t.app, other, cookie);
    const response = await revoke(client, tokens.refresh_token, { token_type_hint: "refresh_token" });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe("");
    expect((await refresh(t.app, client, tokens.refresh_token)).json()).toEqual({
      error: "invalid_grant",
      error_description: "The refresh token has been revoked.",
    });
    expect((await refresh(t.app, other, otherTokens.refresh_token)).statusCode).toBe(200);
    // RFC 7009 2.1: access tokens of the revoked grant stop too; the other app's keep working.
    expectInvalidToken(await userinfo(tokens.access_token));
    expect((await userinfo(otherTokens.access_token)).statusCode).toBe(200);
  });

  it("another client's token and unknown tokens: 200 and no effect; access tokens: unsupported_token_type", async () => {
    expect((await revoke(other, tokens.refresh_token)).statusCode).toBe(200);
    expect((await revoke(client, "tsr_unknown")).statusCode).toBe(200);
    const access = await revoke(client, tokens.access_token, { token_type_hint: "access_token" });
    expect(access.statusCode).toBe(400);
    expect(access.json().error).toBe("unsupported_token_type");
    expect((await refresh(t.app, client, tokens.refresh_token)).statusCode).toBe(200);
  });

  it("requires client authentication; duplicated token is invalid_request", async () => {
    const anonymous = await t.app.inject({
      method: "POST",
      url: "/revoke",
      headers: FORM,
      payload: form({ token: tokens.refresh_token }),
    });
    expect(anonymous.statusCode).toBe(401);
    const dup = await t.app.inject({
      method: "POST",
      url: "/revoke",
      headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
      payload: `token=a&token=b`,
    });
    expect(dup.statusCode).toBe(400);
    expect(dup.json()).toEqual({
      error: "invalid_request",
      error_description: "The token parameter is included more than once.",
    });
    expect((await refresh(t.app, client, tokens.refresh_token)).statusCode).toBe(200);
  });
});

describe("code issued for one client cannot be used at userinfo before redemption", () => {
  it("a code is not a bearer token", async () => {
    const { code, verifier } = await getCode(t.app, client, cookie);
    expectInvalidToken(await userinfo(code));
    expect((await redeem(t.app, client, code, verifier)).statusCode).toBe(200);
  });
});
