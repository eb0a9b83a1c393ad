import { createHash, randomBytes } from "node:crypto";
import { requestDeadlineInDatabaseTime, runWithDeadline, users } from "@tessera/db";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { sessionCookieName } from "../../src/http/session.ts";
import { type ClientInput, createClient } from "../../src/libraries/clients/index.ts";
import { hashPassword } from "../../src/libraries/passwords.ts";
import { signIn, type UserRow } from "../../src/libraries/sessions.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

export function buildOAuthApp(env: Record<string, string> = {}): Promise<TestApp> {
  return buildTestApp(env);
}

export const REDIRECT = "https://shop.example/cb";

export async function createUser(
  app: FastifyInstance,
  input: { email?: string; password?: string; displayName?: string; verified?: boolean } = {},
): Promise<UserRow> {
  const now = app.ctx.clock.now();
  const [user] = await app.ctx.db
    .insert(users)
    .values({
      email: input.email ?? `user-${randomBytes(4).toString("hex")}@example.com`,
      passwordHash: input.password ? await hashPassword(app.ctx.config.passwords, input.password) : null,
      displayName: input.displayName ?? "Ada Lovelace",
      emailVerifiedAt: input.verified === false ? null : now,
      createdAt: now,
      updatedAt: now,
    })
    .returning();
  if (!user) throw new Error("no user");
  return user;
}

export async function registerClient(app: FastifyInstance, input: Partial<ClientInput> = {}) {
  const { client, clientSecret } = await createClient(app.ctx, {
    name: "Shop",
    redirectUris: [REDIRECT],
    postLogoutRedirectUris: ["https://shop.example/"],
    firstParty: true,
    ...input,
  });
  return { client, clientId: client.clientId, secret: clientSecret };
}

export type TestClient = Awaited<ReturnType<typeof registerClient>>;

/** A Tessera session for the user and the Cookie header that carries it (as the hosted sign-in would set it). */
export async function sessionCookie(app: FastifyInstance, user: UserRow) {
  const { session, token } = await signIn(app.ctx, app.ctx.db, {
    userId: user.id,
    amr: ["pwd"],
    meta: { ip: "127.0.0.1", userAgent: "vitest" },
  });
  return { session, cookie: `${sessionCookieName(app.ctx.config)}=${token}` };
}

export function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge };
}

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

export const FORM = { "content-type": "application/x-www-form-urlencoded" };

export const form = (values: Record<string, string>) => new URLSearchParams(values).toString();

export function authorizeQuery(client: TestClient, extra: Record<string, string> = {}, challenge = pkce().challenge) {
  return new URLSearchParams({
    client_id: client.clientId,
    redirect_uri: REDIRECT,
    response_type: "code",
    scope: "openid profile email",
    state: "st-123",
    nonce: "n-456",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  }).toString();
}

/** The query of a redirect's Location. */
export function locationParams(response: LightMyRequestResponse): URLSearchParams {
  const location = response.headers.location;
  if (typeof location !== "string") throw new Error(`no Location (status ${response.statusCode}): ${response.body}`);
  return new URL(location, "http://tessera.invalid").searchParams;
}

/** Runs /authorize with a session cookie and returns a fresh code and its verifier. */
export async function getCode(
  app: FastifyInstance,
  client: TestClient,
  cookie: string,
  extra: Record<string, string> = {},
): Promise<{ code: string; verifier: string }> {
  const { verifier, challenge } = pkce();
  const response = await app.inject({
    method: "GET",
    url: `/authorize?${authorizeQuery(client, extra, challenge)}`,
    headers: { cookie },
  });
  if (response.statusCode !== 302) throw new Error(`authorize answered ${response.statusCode}: ${response.body}`);
  const code = locationParams(response).get("code");
  if (!code) throw new Error(`no code in ${response.headers.location}`);
  return { code, verifier };
}

export function redeem(app: FastifyInstance, client: TestClient, code: string, verifier: string) {
  return app.inject({
    method: "POST",
    url: "/token",
    headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
    payload: form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }),
  });
}

export function refresh(app: FastifyInstance, client: TestClient, refreshToken: string) {
  return app.inject({
    method: "POST",
    url: "/token",
    headers: { ...FORM, authorization: basic(client.clientId, client.secret) },
    payload: form({ grant_type: "refresh_token", refresh_token: refreshToken }),
  });
}

/** Signs a user in for a client and returns the token response. */
export async function tokensFor(app: FastifyInstance, client: TestClient, cookie: string) {
  const { code, verifier } = await getCode(app, client, cookie);
  const response = await redeem(app, client, code, verifier);
  if (response.statusCode !== 200) throw new Error(`token answered ${response.statusCode}: ${response.body}`);
  return response.json() as {
    access_token: string;
    id_token: string;
    refresh_token: string;
    expires_in: number;
    scope: string;
    token_type: string;
    session_expires_at: number;
  };
}

export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(h ?? "", "base64url").toString()),
    payload: JSON.parse(Buffer.from(p ?? "", "base64url").toString()),
  };
}

/**
 * Until the app knows the offset to the database server's clock (measured right after the pool is created): before
 * that, a plain refresh takes the general path (queries/refresh-rotation.ts). PostgreSQL only.
 */
export async function databaseClockKnown(t: TestApp): Promise<void> {
  const client = (t.app.ctx.db as unknown as { session: { client: unknown } }).session.client;
  for (
    let i = 0;
    runWithDeadline(performance.now() + 1000, () => requestDeadlineInDatabaseTime(client)) === undefined;
    i++
  ) {
    if (i > 200) throw new Error("the database clock was never measured");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
