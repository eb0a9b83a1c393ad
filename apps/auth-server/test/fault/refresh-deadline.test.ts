import { performance } from "node:perf_hooks";
import { refreshTokens, rowsOf, runWithDeadline, sessions } from "@tessera/db";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../src/libraries/crypto.ts";
import { chainIdOf, newRefreshTokenValue } from "../../src/libraries/oauth/tokens.ts";
import { idleSlideStepSeconds } from "../../src/libraries/sessions.ts";
import { rotateInOneStatement } from "../../src/queries/refresh-rotation.ts";
import type { TestApp } from "../helpers.ts";
import {
  buildOAuthApp,
  createUser,
  databaseClockKnown,
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
 * The refresh grant's plain rotation (queries/refresh-rotation.ts) is one statement. Issued once the request's
 * deadline has passed (the request waited too long before it got that far), it is refused unsent: the token is not
 * rotated, late or ever, and no connection is left inside a transaction. PostgreSQL only (PGlite takes the general
 * path).
 */
describe.skipIf(!process.env.TEST_DATABASE_URL)("plain refresh rotation past its deadline", () => {
  let t: TestApp;
  let client: TestClient;
  beforeAll(async () => {
    t = await buildOAuthApp();
    client = await registerClient(t.app);
  });
  afterAll(async () => t?.close());

  /** The plain rotation of `token` (of chain `chainId`) by the test's client, as the grant would ask for it. */
  const rotate = (token: string, chainId: string) =>
    rotateInOneStatement(t.app.ctx.db, {
      tokenHash: sha256(token),
      chainId,
      clientId: client.client.id,
      dpopJkt: null,
      successorHash: sha256(newRefreshTokenValue(chainId).token),
      now: t.clock.now(),
      idleTtlSeconds: t.app.ctx.config.sessions.idleTtlSeconds,
      slideStepSeconds: idleSlideStepSeconds(t.app.ctx.config),
    });

  // The session's lock is FOR NO KEY UPDATE when the idle deadline is due to move, FOR SHARE when not: both wait here.
  for (const due of [true, false]) {
    it(`writes nothing when it reaches the server in time but waits for a lock past its deadline (slide ${due ? "due" : "not due"})`, async () => {
      await databaseClockKnown(t);
      const user = await createUser(t.app);
      const { cookie, session } = await sessionCookie(t.app, user);
      const tokens = await tokensFor(t.app, client, cookie);
      const chainId = chainIdOf(tokens.refresh_token);
      if (!chainId) throw new Error("the refresh token names no chain");
      const [before] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, session.id));
      // The request arrives a minute after sign-in (a slide it wrote would show in last_seen_at), or a second after.
      t.clock.advance(due ? 60 : 1);
      let pending: ReturnType<typeof rotateInOneStatement> | undefined;
      await t.app.ctx.db.transaction(async (tx) => {
        // Another writer holds the session's row lock (and changes nothing) until the rotation's deadline has passed.
        await tx.execute(sql`select id from sessions where id = ${session.id} for update`);
        const deadlineAt = performance.now() + 300;
        pending = runWithDeadline(deadlineAt, () => rotate(tokens.refresh_token, chainId));
        pending.catch(() => {});
        for (let i = 0; ; i++) {
          const waiting = await t.app.ctx.db.execute(
            sql`select count(*)::int as n from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'`,
          );
          if ((rowsOf<{ n: number }>(waiting)[0]?.n ?? 0) > 0) break;
          if (i > 200) throw new Error("the rotation never waited for the lock");
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadlineAt - performance.now()) + 100));
      });
      const outcome = await (pending as ReturnType<typeof rotateInOneStatement>);
      expect(outcome?.found?.token.tokenHash).toBe(sha256(tokens.refresh_token));
      expect(outcome?.successorId).toBeNull();
      const rows = await t.app.ctx.db.select().from(refreshTokens).where(eq(refreshTokens.sessionId, session.id));
      expect(rows.map((row) => ({ parentId: row.parentId, rotatedAt: row.rotatedAt }))).toEqual([
        { parentId: null, rotatedAt: null },
      ]);
      const [after] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, session.id));
      expect(after?.lastSeenAt).toEqual(before?.lastSeenAt);
      expect(after?.idleExpiresAt).toEqual(before?.idleExpiresAt);
      expect((await refresh(t.app, client, tokens.refresh_token)).statusCode).toBe(200);
    });
  }

  it("writes nothing once the deadline has passed: no connection is left in a transaction, and the token still refreshes", async () => {
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const tokens = await tokensFor(t.app, client, cookie);
    const chainId = chainIdOf(tokens.refresh_token);
    if (!chainId) throw new Error("the refresh token names no chain");
    const deadlineAt = performance.now() + 300;

    const outcome = await runWithDeadline(deadlineAt, async () => {
      // The request gets to its rotation only after the deadline (synchronously, so nothing else runs in between).
      while (performance.now() < deadlineAt + 50) {
        // spin
      }
      return rotate(tokens.refresh_token, chainId);
    }).then(
      () => "rotated",
      (error: unknown) => codeOf(error),
    );
    expect(outcome).toBe("DB_DEADLINE_EXCEEDED");

    // Only client backends count: an autovacuum worker on this database shows as active in a transaction too.
    const stuck = await t.app.ctx.db.execute(
      sql`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and backend_type = 'client backend' and state <> 'idle'
            and xact_start < now() - interval '200 milliseconds'`,
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
