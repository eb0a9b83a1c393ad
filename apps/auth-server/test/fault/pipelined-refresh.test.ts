import { performance } from "node:perf_hooks";
import { refreshTokens, rowsOf, runWithDeadline } from "@tessera/db";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../src/libraries/crypto.ts";
import { newRefreshTokenValue } from "../../src/libraries/oauth/tokens.ts";
import { rotateInTwoStatements } from "../../src/queries/refresh-rotation.ts";
import type { TestApp } from "../helpers.ts";
import {
  buildOAuthApp,
  createUser,
  refresh,
  registerClient,
  sessionCookie,
  type TestClient,
  tokensFor,
} from "../oauth/helpers.ts";

/** The code of an error or of the first cause that has one (drizzle wraps driver errors). */
function codeOf(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

/**
 * The refresh grant's plain rotation (queries/refresh-rotation.ts) reads, decides, then writes. When the request's
 * deadline passes while it decides, the write is refused unsent (the deadline refuses statements issued after it): the
 * token is not rotated, late or ever, and no connection is left inside a transaction. PostgreSQL only (PGlite takes the
 * general path).
 */
describe.skipIf(!process.env.TEST_DATABASE_URL)("plain refresh rotation past its deadline", () => {
  let t: TestApp;
  let client: TestClient;
  beforeAll(async () => {
    t = await buildOAuthApp();
    client = await registerClient(t.app);
  });
  afterAll(async () => t?.close());

  it("writes nothing once the deadline has passed: no connection is left in a transaction, and the token still refreshes", async () => {
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const tokens = await tokensFor(t.app, client, cookie);
    const deadlineAt = performance.now() + 1500;

    const outcome = await runWithDeadline(deadlineAt, () =>
      rotateInTwoStatements(t.app.ctx.db, sha256(tokens.refresh_token), null, (found) => {
        if (!found) return null;
        // The decision takes until after the deadline (synchronously, so nothing else can run in between).
        while (performance.now() < deadlineAt + 50) {
          // spin
        }
        const { token, chainId } = newRefreshTokenValue(found.token.chainId);
        return {
          tokenHash: sha256(token),
          sessionId: found.session.id,
          clientId: found.token.clientId,
          userId: found.user.id,
          parentId: found.token.id,
          chainId,
          authorizationCodeId: found.token.authorizationCodeId,
          scope: found.token.scope,
          createdAt: t.clock.now(),
          idleExpiresAt: found.session.idleExpiresAt,
        };
      }),
    ).then(
      () => "rotated",
      (error: unknown) => codeOf(error),
    );
    expect(outcome).toBe("DB_DEADLINE_EXCEEDED");

    // A connection left in the transaction is either idle in it, or (when the pool hands it to this very query)
    // running this query inside it. Either way its transaction began before the decision's 1.5 s spin. Only client
    // backends count: an autovacuum worker on this database shows as active in a transaction too (it made this test
    // flaky in CI).
    const stuck = await t.app.ctx.db.execute(
      sql`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and backend_type = 'client backend' and state <> 'idle'
            and xact_start < now() - interval '1 second'`,
    );
    expect(rowsOf<{ n: number }>(stuck)[0]?.n).toBe(0);
    const [row] = await t.app.ctx.db
      .select()
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, sha256(tokens.refresh_token)));
    expect(row?.rotatedAt).toBeNull();
    expect((await refresh(t.app, client, tokens.refresh_token)).statusCode).toBe(200);
  });
});
