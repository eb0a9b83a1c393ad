import { refreshTokens, rowsOf, sessions } from "@tessera/db";
import { and, eq, isNull, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../src/libraries/crypto.ts";
import type { TestApp } from "../helpers.ts";
import {
  buildOAuthApp,
  createUser,
  databaseClockKnown,
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

/**
 * Races that only a real PostgreSQL can show (PGlite has one connection and serializes everything): `.ci/run` runs
 * this file again with TEST_DATABASE_URL, where the requests truly overlap in separate transactions.
 */
let t: TestApp;
let client: TestClient;
const PARALLEL = 12;

beforeAll(async () => {
  t = await buildOAuthApp();
  client = await registerClient(t.app);
});
afterAll(async () => t.close());

describe("parallel requests with one credential", () => {
  it("N parallel redemptions of one code: exactly one wins", async () => {
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const { code, verifier } = await getCode(t.app, client, cookie);
    const responses = await Promise.all(Array.from({ length: PARALLEL }, () => redeem(t.app, client, code, verifier)));
    const statuses = responses.map((r) => r.statusCode).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    for (const r of responses.filter((r) => r.statusCode !== 200)) {
      expect(r.statusCode).toBe(400);
      expect(r.json()).toEqual({
        error: "invalid_grant",
        error_description: "The authorization code has already been used.",
      });
    }
    // One refresh token was issued, and the replays revoked it (RFC 6749 4.1.2).
    const issued = await t.app.ctx.db.select().from(refreshTokens).where(eq(refreshTokens.userId, user.id));
    expect(issued).toHaveLength(1);
    expect(issued[0]?.revokedAt).not.toBeNull();
  });

  it("N parallel refreshes with one token: exactly one successor, the session survives", async () => {
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const tokens = await tokensFor(t.app, client, cookie);
    const responses = await Promise.all(
      Array.from({ length: PARALLEL }, () => refresh(t.app, client, tokens.refresh_token)),
    );
    const winners = responses.filter((r) => r.statusCode === 200);
    expect(winners).toHaveLength(1);
    for (const r of responses.filter((r) => r.statusCode !== 200)) {
      expect(r.statusCode).toBe(400);
      expect(r.json()).toEqual({
        error: "invalid_grant",
        error_description: "The refresh token was just rotated by a concurrent request; use the newest refresh token.",
        tessera_code: "REFRESH_ROTATED_CONCURRENTLY",
      });
    }
    const [parent] = await t.app.ctx.db
      .select()
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, sha256(tokens.refresh_token)));
    const children = await t.app.ctx.db
      .select()
      .from(refreshTokens)
      .where(eq(refreshTokens.parentId, parent?.id as string));
    expect(children).toHaveLength(1);
    expect(children[0]?.tokenHash).toBe(sha256(winners[0]?.json().refresh_token));
    const [session] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(session?.revokedAt).toBeNull();
    // The successor keeps working.
    expect((await refresh(t.app, client, winners[0]?.json().refresh_token)).statusCode).toBe(200);
  });

  it("N parallel refreshes of a successor and a replay of its retired parent outside the grace window", async () => {
    const user = await createUser(t.app);
    const { cookie } = await sessionCookie(t.app, user);
    const tokens = await tokensFor(t.app, client, cookie);
    const next = (await refresh(t.app, client, tokens.refresh_token)).json();
    t.clock.advance(t.app.ctx.config.tokens.refreshGraceSeconds + 1);
    const responses = await Promise.all([
      refresh(t.app, client, tokens.refresh_token),
      ...Array.from({ length: 4 }, () => refresh(t.app, client, next.refresh_token)),
    ]);
    // Whatever the interleaving: the replay is detected and the session ends; no token of it stays usable, and no
    // request fails with a 500 (a deadlock between rotation and the revocation would abort one on PostgreSQL).
    expect(responses[0]?.json().error).toBe("invalid_grant");
    for (const r of responses) expect([200, 400]).toContain(r.statusCode);
    const [session] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(session?.revokedReason).toBe("refresh_token_reuse");
    const live = (await t.app.ctx.db.select().from(refreshTokens).where(eq(refreshTokens.userId, user.id))).filter(
      (r) => r.revokedAt === null,
    );
    expect(live).toHaveLength(0);
    for (const r of responses.filter((r) => r.statusCode === 200)) {
      expect((await refresh(t.app, client, r.json().refresh_token)).statusCode).toBe(400);
    }
  });

  it("refreshes racing a logout and a replay: never a 500 (session, then tokens: one lock order everywhere)", async () => {
    // Regression: rotation locked the token and then the session, while ending a session locks the session and then
    // its tokens; on PostgreSQL the two deadlocked and one request answered 500 server_error.
    for (let round = 0; round < 8; round++) {
      const user = await createUser(t.app);
      const { cookie } = await sessionCookie(t.app, user);
      const tokens = await tokensFor(t.app, client, cookie);
      const next = (await refresh(t.app, client, tokens.refresh_token)).json();
      t.clock.advance(t.app.ctx.config.tokens.refreshGraceSeconds + 1);
      const responses = await Promise.all([
        refresh(t.app, client, next.refresh_token),
        refresh(t.app, client, tokens.refresh_token),
        t.app.inject({
          method: "POST",
          url: "/logout",
          headers: FORM,
          payload: form({ id_token_hint: tokens.id_token }),
        }),
        refresh(t.app, client, next.refresh_token),
      ]);
      expect(responses.map((r) => r.statusCode)).toEqual([
        expect.toBeOneOf([200, 400]),
        400,
        200,
        expect.toBeOneOf([200, 400]),
      ]);
      const live = (await t.app.ctx.db.select().from(refreshTokens).where(eq(refreshTokens.userId, user.id))).filter(
        (r) => r.revokedAt === null,
      );
      expect(live).toHaveLength(0);
    }
  });

  it("a code redeemed while the session is being ended: never a live refresh token in an ended session", async () => {
    // Regression: the redemption read the session without a lock, so a logout committing meanwhile revoked the
    // session's tokens before the new one was written, leaving it live (PostgreSQL, most rounds).
    const other = await registerClient(t.app, { name: "Other" });
    for (let round = 0; round < 8; round++) {
      const user = await createUser(t.app);
      const { cookie } = await sessionCookie(t.app, user);
      const hint = (await tokensFor(t.app, other, cookie)).id_token;
      const { code, verifier } = await getCode(t.app, client, cookie);
      const [logout, redemption] = await Promise.all([
        t.app.inject({ method: "POST", url: "/logout", headers: FORM, payload: form({ id_token_hint: hint }) }),
        redeem(t.app, client, code, verifier),
      ]);
      expect(logout.statusCode).toBe(200);
      if (redemption.statusCode !== 200) {
        expect(redemption.json()).toEqual({ error: "invalid_grant", error_description: "The session has ended." });
      }
      const live = await t.app.ctx.db
        .select()
        .from(refreshTokens)
        .where(and(eq(refreshTokens.userId, user.id), isNull(refreshTokens.revokedAt)));
      expect(live).toEqual([]);
    }
  });
});

/**
 * The plain rotation is one statement whose snapshot may predate a logout that commits while the statement waits for
 * the session's row lock (queries/refresh-rotation.ts). Made deterministic here: a transaction of the test's own ends
 * the session (the session row alone, its tokens alone, or both, as endSessions does) and holds the locks until the
 * refresh is seen waiting for one; then it commits. The refresh must then store nothing, and answer as the general path
 * does for the state it finds.
 */
describe.skipIf(!process.env.TEST_DATABASE_URL)("a refresh waiting on a logout that commits meanwhile", () => {
  const cases = [
    { ends: "the session row", session: true, tokens: false, description: "The session has ended." },
    { ends: "the tokens", session: false, tokens: true, description: "The refresh token has been revoked." },
    { ends: "both", session: true, tokens: true, description: "The refresh token has been revoked." },
  ];
  // The refresh's lock on the session is FOR NO KEY UPDATE when its idle deadline is due to move, else FOR SHARE.
  for (const c of cases.flatMap((c) => [true, false].map((due) => ({ ...c, due })))) {
    it(`ending ${c.ends} (slide ${c.due ? "due" : "not due"}): no successor, and invalid_grant`, async () => {
      await databaseClockKnown(t);
      const user = await createUser(t.app);
      const { cookie, session } = await sessionCookie(t.app, user);
      const tokens = await tokensFor(t.app, client, cookie);
      t.clock.advance(c.due ? 60 : 1);
      const now = t.clock.now();
      let pending: ReturnType<typeof refresh> | undefined;
      await t.app.ctx.db.transaction(async (tx) => {
        if (c.session) await tx.update(sessions).set({ revokedAt: now }).where(eq(sessions.id, session.id));
        if (c.tokens) {
          await tx.update(refreshTokens).set({ revokedAt: now }).where(eq(refreshTokens.sessionId, session.id));
        }
        pending = refresh(t.app, client, tokens.refresh_token);
        // Until the refresh's statement waits for a row lock this transaction holds.
        for (let i = 0; ; i++) {
          const waiting = await t.app.ctx.db.execute(
            sql`select count(*)::int as n from pg_stat_activity
                where datname = current_database() and wait_event_type = 'Lock'`,
          );
          if ((rowsOf<{ n: number }>(waiting)[0]?.n ?? 0) > 0) break;
          if (i > 200) throw new Error("the refresh never waited for the logout's lock");
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      });
      const response = await (pending as ReturnType<typeof refresh>);
      expect({ status: response.statusCode, body: response.json() }).toEqual({
        status: 400,
        body: { error: "invalid_grant", error_description: c.description },
      });
      const rows = await t.app.ctx.db.select().from(refreshTokens).where(eq(refreshTokens.sessionId, session.id));
      expect(rows).toHaveLength(1);
      expect(rows[0]?.rotatedAt).toBeNull();
    });
  }
});

/**
 * Every app of one user refreshes against the same session. Where the idle deadline need not move (sessions.ts
 * dueSlide), a plain refresh holds the session's row FOR SHARE: the apps' refreshes do not queue behind each other,
 * while a logout still waits for them and they for it (the tests above). Where it must move, the refresh takes FOR NO
 * KEY UPDATE at once: two refreshes upgrading shared locks at once would deadlock.
 */
describe.skipIf(!process.env.TEST_DATABASE_URL)("refreshes of one session's many apps", () => {
  /** Runs `during` while another transaction holds the session's row FOR SHARE, as a refresh in flight does. */
  async function whileShared<T>(sessionId: string, during: () => Promise<T>): Promise<T> {
    return t.app.ctx.db.transaction(async (tx) => {
      await tx.execute(sql`select id from sessions where id = ${sessionId} for share`);
      return during();
    });
  }
  const waitingForLock = async () => {
    const waiting = await t.app.ctx.db.execute(
      sql`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`,
    );
    return (rowsOf<{ n: number }>(waiting)[0]?.n ?? 0) > 0;
  };

  it("a refresh whose slide is not due does not wait for another refresh of the session", async () => {
    await databaseClockKnown(t);
    const user = await createUser(t.app);
    const { cookie, session } = await sessionCookie(t.app, user);
    const tokens = await tokensFor(t.app, client, cookie);
    const [before] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, session.id));
    t.clock.advance(1);
    const outcome = await whileShared(session.id, () =>
      Promise.race([
        refresh(t.app, client, tokens.refresh_token).then((r) => r.statusCode),
        new Promise((resolve) => setTimeout(() => resolve("still waiting after 3 s"), 3000)),
      ]),
    );
    expect(outcome).toBe(200);
    const [after] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, session.id));
    expect({ lastSeenAt: after?.lastSeenAt, idleExpiresAt: after?.idleExpiresAt }).toEqual({
      lastSeenAt: before?.lastSeenAt,
      idleExpiresAt: before?.idleExpiresAt,
    });
  });

  it("a refresh whose slide is due waits for the other refreshes, then slides the session", async () => {
    await databaseClockKnown(t);
    const user = await createUser(t.app);
    const { cookie, session } = await sessionCookie(t.app, user);
    const tokens = await tokensFor(t.app, client, cookie);
    t.clock.advance(60);
    let pending: ReturnType<typeof refresh> | undefined;
    await whileShared(session.id, async () => {
      pending = refresh(t.app, client, tokens.refresh_token);
      for (let i = 0; !(await waitingForLock()); i++) {
        if (i > 200) throw new Error("the refresh never waited for the shared lock");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    expect((await (pending as ReturnType<typeof refresh>)).statusCode).toBe(200);
    const [after] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, session.id));
    expect(after?.lastSeenAt).toEqual(t.clock.now());
    expect(after?.idleExpiresAt.getTime()).toBe(
      t.clock.now().getTime() + t.app.ctx.config.sessions.idleTtlSeconds * 1000,
    );
  });

  it("N apps refreshing at once when the slide is due: every one rotates, no deadlock", async () => {
    await databaseClockKnown(t);
    const user = await createUser(t.app);
    const { cookie, session } = await sessionCookie(t.app, user);
    const chains: string[] = [];
    for (let i = 0; i < PARALLEL; i++) chains.push((await tokensFor(t.app, client, cookie)).refresh_token);
    for (let round = 0; round < 3; round++) {
      t.clock.advance(60);
      const responses = await Promise.all(chains.map((token) => refresh(t.app, client, token)));
      expect(responses.map((r) => r.statusCode)).toEqual(chains.map(() => 200));
      responses.forEach((r, i) => {
        chains[i] = r.json().refresh_token;
      });
    }
    const live = await t.app.ctx.db
      .select()
      .from(refreshTokens)
      .where(and(eq(refreshTokens.sessionId, session.id), isNull(refreshTokens.rotatedAt)));
    expect(live.map((row) => row.tokenHash).sort()).toEqual(chains.map((token) => sha256(token)).sort());
    const [after] = await t.app.ctx.db.select().from(sessions).where(eq(sessions.id, session.id));
    expect(after?.lastSeenAt).toEqual(t.clock.now());
  });
});
