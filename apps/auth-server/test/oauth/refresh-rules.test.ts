import { clients, dpopBindings, refreshTokens, sessions, users } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OAuthError } from "../../src/errors/index.ts";
import { findActiveClient } from "../../src/libraries/clients/index.ts";
import { sha256 } from "../../src/libraries/crypto.ts";
import { refreshTokenGrant } from "../../src/libraries/oauth/grants.ts";
import { chainIdOf } from "../../src/libraries/oauth/tokens.ts";
import type { UserRow } from "../../src/libraries/sessions.ts";
import type { TestApp } from "../helpers.ts";
import {
  buildOAuthApp,
  createUser,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "./helpers.ts";

/**
 * On PostgreSQL a plain refresh is one statement that rotates only if its own copy of the refresh rules holds
 * (queries/refresh-rotation.ts); the grant's `check` is the other copy. Whatever a refusal's reason, the refused
 * request must leave the chain exactly as it was: the presented token not retired, no successor stored. (Were a rule
 * missing from the statement, it would rotate first and the refusal would come after, from `check`: the token retired
 * and a successor stored that nobody received.) Runs on both drivers; PGlite always takes the general path.
 */
let t: TestApp;
let client: TestClient;
let other: TestClient;
let user: UserRow;
let cookie: string;
let sessionId: string;
const meta = { ip: "127.0.0.1", userAgent: "vitest" };

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app);
  other = await registerClient(t.app, { name: "Game" });
});
afterAll(async () => t.close());
beforeEach(async () => {
  user = await createUser(t.app);
  const signedIn = await sessionCookie(t.app, user);
  cookie = signedIn.cookie;
  sessionId = signedIn.session.id;
});

/** The session's refresh-token rows, and the presented token's `rotated_at`. */
async function chainState(refreshToken: string) {
  const rows = await t.app.ctx.db
    .select({ id: refreshTokens.id, rotatedAt: refreshTokens.rotatedAt, revokedAt: refreshTokens.revokedAt })
    .from(refreshTokens)
    .where(eq(refreshTokens.sessionId, sessionId));
  const [presented] = await t.app.ctx.db
    .select({ rotatedAt: refreshTokens.rotatedAt })
    .from(refreshTokens)
    .where(eq(refreshTokens.tokenHash, sha256(refreshToken)));
  return { rows: rows.length, retired: presented?.rotatedAt ?? null };
}

async function expectRefused(
  refreshToken: string,
  request: () => Promise<{ statusCode: number; json: () => unknown } | unknown>,
  expected: { status?: number; error: string; description: string },
) {
  const before = await chainState(refreshToken);
  const outcome = await request().catch((error: unknown) => error);
  if (outcome instanceof OAuthError) {
    expect({ error: outcome.error, description: outcome.message }).toEqual({
      error: expected.error,
      description: expected.description,
    });
  } else {
    const response = outcome as { statusCode: number; json: () => unknown };
    expect({ status: response.statusCode, body: response.json() }).toMatchObject({
      status: expected.status,
      body: { error: expected.error, error_description: expected.description },
    });
  }
  expect(await chainState(refreshToken)).toEqual({ ...before, retired: null });
}

describe("a refused refresh leaves its chain as it was", () => {
  it("another client's token", async () => {
    const a = await tokensFor(t.app, client, cookie);
    await expectRefused(a.refresh_token, () => refresh(t.app, other, a.refresh_token), {
      status: 400,
      error: "invalid_grant",
      description: "The refresh token was not issued to this client.",
    });
    expect((await refresh(t.app, client, a.refresh_token)).statusCode).toBe(200);
  });

  it("a disabled user, then a deleted one", async () => {
    const a = await tokensFor(t.app, client, cookie);
    for (const column of ["disabledAt", "deletedAt"] as const) {
      await t.app.ctx.db
        .update(users)
        .set({ [column]: t.clock.now() })
        .where(eq(users.id, user.id));
      await expectRefused(a.refresh_token, () => refresh(t.app, client, a.refresh_token), {
        status: 400,
        error: "invalid_grant",
        description: "The user account is disabled.",
      });
      await t.app.ctx.db
        .update(users)
        .set({ [column]: null })
        .where(eq(users.id, user.id));
    }
    expect((await refresh(t.app, client, a.refresh_token)).statusCode).toBe(200);
  });

  it("an ended session, an idle one, one past its absolute expiry", async () => {
    const a = await tokensFor(t.app, client, cookie);
    const ended = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, sessionId));
    const original = ended[0];
    if (!original) throw new Error("no session");
    const cases = [
      { set: { revokedAt: t.clock.now() }, description: "The session has ended." },
      { set: { idleExpiresAt: t.clock.now() }, description: "The session has expired." },
      { set: { expiresAt: t.clock.now() }, description: "The session has expired." },
    ];
    for (const { set, description } of cases) {
      await t.app.ctx.db.update(sessions).set(set).where(eq(sessions.id, sessionId));
      await expectRefused(a.refresh_token, () => refresh(t.app, client, a.refresh_token), {
        status: 400,
        error: "invalid_grant",
        description,
      });
      await t.app.ctx.db
        .update(sessions)
        .set({ revokedAt: null, idleExpiresAt: original.idleExpiresAt, expiresAt: original.expiresAt })
        .where(eq(sessions.id, sessionId));
    }
    expect((await refresh(t.app, client, a.refresh_token)).statusCode).toBe(200);
  });

  it("a revoked token", async () => {
    const a = await tokensFor(t.app, client, cookie);
    await t.app.ctx.db
      .update(refreshTokens)
      .set({ revokedAt: t.clock.now() })
      .where(eq(refreshTokens.tokenHash, sha256(a.refresh_token)));
    await expectRefused(a.refresh_token, () => refresh(t.app, client, a.refresh_token), {
      status: 400,
      error: "invalid_grant",
      description: "The refresh token has been revoked.",
    });
  });

  it("a client disabled after it authenticated", async () => {
    const own = await registerClient(t.app, { name: "Doomed" });
    const a = await tokensFor(t.app, own, cookie);
    const authenticated = await findActiveClient(t.app.ctx.db, own.clientId);
    if (!authenticated) throw new Error("no client");
    // The row changes under a request that already holds the client (its cache entry is not what is checked).
    await t.app.ctx.db.update(clients).set({ disabledAt: t.clock.now() }).where(eq(clients.id, authenticated.id));
    await expectRefused(
      a.refresh_token,
      () => refreshTokenGrant(t.app.ctx, authenticated, { refreshToken: a.refresh_token, scope: undefined }, meta),
      { error: "invalid_grant", description: "The client is disabled." },
    );
  });

  it("a chain bound to a DPoP key: without a proof, or with another key's", async () => {
    const a = await tokensFor(t.app, client, cookie);
    const chainId = chainIdOf(a.refresh_token);
    if (!chainId) throw new Error("no chain id");
    await t.app.ctx.db.insert(dpopBindings).values({ chainId, jkt: "bound-key", createdAt: t.clock.now() });
    const row = await findActiveClient(t.app.ctx.db, client.clientId);
    if (!row) throw new Error("no client");
    const grant = (dpopJkt: string | null) => () =>
      refreshTokenGrant(t.app.ctx, row, { refreshToken: a.refresh_token, scope: undefined, dpopJkt }, meta);
    await expectRefused(a.refresh_token, grant(null), {
      error: "invalid_dpop_proof",
      description: "This refresh token is bound to a DPoP key: send a DPoP proof signed with it.",
    });
    await expectRefused(a.refresh_token, grant("another-key"), {
      error: "invalid_grant",
      description: "The refresh token is bound to another DPoP key.",
    });
    const rotated = await grant("bound-key")();
    expect(rotated.token_type).toBe("DPoP");
  });

  it("a stored token whose chain is not the one its text names is rotated in its stored chain", async () => {
    const a = await tokensFor(t.app, client, cookie);
    const stored = "00000000-0000-4000-8000-00000000c4a1";
    await t.app.ctx.db
      .update(refreshTokens)
      .set({ chainId: stored })
      .where(eq(refreshTokens.tokenHash, sha256(a.refresh_token)));
    const response = await refresh(t.app, client, a.refresh_token);
    expect(response.statusCode).toBe(200);
    const [successor] = await t.app.ctx.db
      .select({ chainId: refreshTokens.chainId })
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, sha256(response.json().refresh_token)));
    expect(successor?.chainId).toBe(stored);
  });
});
