import {
  authorizationCodes,
  backchannelLogoutJobs,
  emailTokens,
  federationFlows,
  identityProviders,
  mfaChallenges,
  refreshTokens,
  sessions,
} from "@tessera/db";
import { usingPostgres } from "@tessera/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { createClient } from "../../src/libraries/clients/index.ts";
import { addSeconds } from "../../src/libraries/clock.ts";
import { randomToken, sha256 } from "../../src/libraries/crypto.ts";
import { sweep } from "../../src/libraries/jobs/sweeper.ts";
import { insertAdminUser } from "../../src/queries/admin.ts";
import { build } from "../contract.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

let t: TestApp;
const RETENTION = 3600;

beforeAll(async () => {
  t = await buildTestApp({ SWEEPER_RETENTION_SECONDS: String(RETENTION), SWEEPER_INTERVAL_SECONDS: "1" });
});
afterAll(() => t.close());

/** Seeds one row of every kind, labelled; returns the labels expected to survive and to be deleted. */
async function seed() {
  const db = t.app.ctx.db;
  const now = t.clock.now();
  const longAgo = addSeconds(now, -2 * RETENTION);
  const recently = addSeconds(now, -60);
  const later = addSeconds(now, 3600);
  const user = await insertAdminUser(db, { email: `u-${randomToken().slice(0, 8)}@example.com` });
  const { client } = await createClient(t.app.ctx, { name: "C", redirectUris: ["https://c.example/cb"] });

  const session = async (label: string, values: Partial<typeof sessions.$inferInsert>) => {
    const [row] = await db
      .insert(sessions)
      .values({
        tokenHash: sha256(randomToken()),
        userId: user.id,
        authenticatedAt: longAgo,
        lastSeenAt: now,
        expiresAt: later,
        idleExpiresAt: later,
        revokedReason: label,
        ...values,
      })
      .returning();
    if (!row) throw new Error("no session");
    return row;
  };
  const live = await session("live", {});
  const expired = await session("expired", { expiresAt: longAgo, idleExpiresAt: longAgo });
  const idleExpired = await session("idle-expired", { idleExpiresAt: longAgo });
  const revokedOld = await session("revoked-old", { revokedAt: longAgo });
  const revokedRecent = await session("revoked-recent", { revokedAt: recently });
  const expiredRecent = await session("expired-recent", { expiresAt: recently, idleExpiresAt: recently });

  const token = (label: string, sessionId: string, values: Partial<typeof refreshTokens.$inferInsert> = {}) =>
    db.insert(refreshTokens).values({
      tokenHash: sha256(randomToken()),
      sessionId,
      clientId: client.id,
      userId: user.id,
      scope: label,
      ...values,
    });
  await token("rt-live", live.id);
  await token("rt-rotated-live", live.id, { rotatedAt: longAgo });
  for (const n of [1, 2, 3]) await token(`rt-revoked-old-${n}`, live.id, { revokedAt: longAgo });
  await token("rt-revoked-recent", live.id, { revokedAt: recently });
  await token("rt-in-expired-session", expired.id);

  const code = (label: string, expiresAt: Date) =>
    db.insert(authorizationCodes).values({
      codeHash: sha256(randomToken()),
      clientId: client.id,
      userId: user.id,
      sessionId: live.id,
      redirectUri: "https://c.example/cb",
      codeChallenge: "x",
      scope: label,
      authTime: now,
      expiresAt,
    });
  await code("code-fresh", addSeconds(now, 60));
  await code("code-expired-recent", recently);
  for (const n of [1, 2, 3]) await code(`code-expired-old-${n}`, longAgo);

  const email = (label: string, values: { expiresAt: Date; usedAt?: Date }) =>
    db.insert(emailTokens).values({
      tokenHash: sha256(randomToken()),
      userId: user.id,
      purpose: "verify_email",
      newEmail: label,
      ...values,
    });
  await email("email-fresh", { expiresAt: later });
  await email("email-expired-old", { expiresAt: longAgo });
  await email("email-used-old", { expiresAt: later, usedAt: longAgo });
  await email("email-used-recent", { expiresAt: later, usedAt: recently });

  const mfa = (values: { expiresAt: Date; usedAt?: Date; attempts: number }) =>
    db.insert(mfaChallenges).values({ tokenHash: sha256(randomToken()), userId: user.id, ...values });
  await mfa({ expiresAt: later, attempts: 1 }); // fresh
  await mfa({ expiresAt: longAgo, attempts: 2 }); // expired long ago
  await mfa({ expiresAt: later, usedAt: longAgo, attempts: 3 }); // used long ago

  const job = (label: string, values: Partial<typeof backchannelLogoutJobs.$inferInsert>) =>
    db.insert(backchannelLogoutJobs).values({
      clientId: client.id,
      sessionId: live.id,
      userId: user.id,
      logoutUri: `https://c.example/${label}`,
      createdAt: longAgo,
      ...values,
    });
  await job("pending-old", { nextAttemptAt: longAgo });
  await job("delivered-old", { deliveredAt: longAgo });
  await job("abandoned-old", { abandonedAt: longAgo });
  await job("delivered-recent", { deliveredAt: recently });

  return {
    userId: user.id,
    clientId: client.id,
    sessionIds: { live, expired, idleExpired, revokedOld, revokedRecent, expiredRecent },
  };
}

async function remaining(userId: string) {
  const db = t.app.ctx.db;
  const s = await db.select({ l: sessions.revokedReason }).from(sessions).where(sql`${sessions.userId} = ${userId}`);
  const r = await db
    .select({ l: refreshTokens.scope })
    .from(refreshTokens)
    .where(sql`${refreshTokens.userId} = ${userId}`);
  const c = await db
    .select({ l: authorizationCodes.scope })
    .from(authorizationCodes)
    .where(sql`${authorizationCodes.userId} = ${userId}`);
  const e = await db
    .select({ l: emailTokens.newEmail })
    .from(emailTokens)
    .where(sql`${emailTokens.userId} = ${userId}`);
  const m = await db
    .select({ l: mfaChallenges.attempts })
    .from(mfaChallenges)
    .where(sql`${mfaChallenges.userId} = ${userId}`);
  const j = await db
    .select({ l: backchannelLogoutJobs.logoutUri })
    .from(backchannelLogoutJobs)
    .where(sql`${backchannelLogoutJobs.userId} = ${userId}`);
  const sorted = <T>(rows: { l: T }[]) => rows.map((x) => x.l).sort();
  return {
    sessions: sorted(s),
    refreshTokens: sorted(r),
    codes: sorted(c),
    emailTokens: sorted(e),
    mfa: sorted(m),
    jobs: sorted(j).map((u) => String(u).replace("https://c.example/", "")),
  };
}

const EXPECTED_KEPT = {
  sessions: ["expired-recent", "live", "revoked-recent"],
  refreshTokens: ["rt-live", "rt-revoked-recent", "rt-rotated-live"],
  codes: ["code-expired-recent", "code-fresh"],
  emailTokens: ["email-fresh", "email-used-recent"],
  mfa: [1],
  jobs: ["delivered-recent", "pending-old"],
};

describe("sweeper", () => {
  it("deletes expired and long-revoked rows in batches and keeps everything else", async () => {
    const { userId } = await seed();
    const report = await sweep(t.app.ctx, { batchSize: 2 });
    expect(report).toEqual({
      ran: true,
      deleted: {
        sessions: 3, // expired, idle-expired, revoked-old (cascading to rt-in-expired-session)
        refresh_tokens: 3, // the three revoked long ago; in batches of 2
        authorization_codes: 3,
        email_tokens: 2,
        mfa_challenges: 2,
        passkey_challenges: 0,
        federation_flows: 0,
        backchannel_logout_jobs: 2,
        webhook_deliveries: 0,
        account_throttles: 0,
        ip_suspensions: 0,
        guest_users: 0,
      },
      scrubbed: { audit_events: 0 },
    });
    expect(await remaining(userId)).toEqual(EXPECTED_KEPT);

    // Nothing more to do: a second run deletes nothing.
    const again = await sweep(t.app.ctx, { batchSize: 2 });
    expect(Object.values(again.deleted).every((n) => n === 0)).toBe(true);
  });

  it("applies the retention from the clock: once it passes, recently ended rows go too", async () => {
    const { userId } = await seed();
    t.clock.advance(RETENTION);
    try {
      await sweep(t.app.ctx);
      const left = await remaining(userId);
      expect(left.sessions).toEqual(["live"]);
      expect(left.refreshTokens).toEqual(["rt-live", "rt-rotated-live"]);
      expect(left.jobs).toEqual(["pending-old"]);
    } finally {
      t.clock.advance(-RETENTION);
    }
  });

  it("deletes upstream sign-in ceremonies (federation_flows) that expired or were used before the cutoff (#15)", async () => {
    const db = t.app.ctx.db;
    const now = t.clock.now();
    const longAgo = addSeconds(now, -2 * RETENTION);
    const recently = addSeconds(now, -60);
    const later = addSeconds(now, 600);
    const slug = `sweep-${randomToken().slice(0, 8).toLowerCase()}`;
    const [provider] = await db
      .insert(identityProviders)
      .values({ slug, kind: "oauth2", preset: "github", displayName: "GitHub" })
      .returning();
    if (!provider) throw new Error("no provider");
    const flow = (label: string, purpose: "upstream" | "pending_link" | "email_link" | "mfa", values: object) =>
      db.insert(federationFlows).values({
        tokenHash: sha256(randomToken()),
        purpose,
        providerId: provider.id,
        data: { label },
        expiresAt: later,
        ...values,
      });
    await flow("fresh", "upstream", {});
    await flow("expired-recent", "pending_link", { expiresAt: recently });
    await flow("used-recent", "email_link", { usedAt: recently });
    await flow("expired-old", "upstream", { expiresAt: longAgo });
    await flow("used-old", "mfa", { usedAt: longAgo });
    await flow("pending-link-expired-old", "pending_link", { expiresAt: longAgo });

    const report = await sweep(t.app.ctx, { batchSize: 2 });
    expect(report.deleted.federation_flows).toBe(3);
    const left = await db
      .select({ data: federationFlows.data })
      .from(federationFlows)
      .where(sql`${federationFlows.providerId} = ${provider.id}`);
    expect(left.map((r) => r.data.label).sort()).toEqual(["expired-recent", "fresh", "used-recent"]);
  });

  it("runs on its interval when build() starts the jobs, and stops when the app closes", async () => {
    const { userId } = await seed();
    // A second app on the same database, as server.ts builds it (startJobs), with a 1 s sweeper interval.
    const config = testConfig({ SWEEPER_RETENTION_SECONDS: String(RETENTION), SWEEPER_INTERVAL_SECONDS: "1" });
    const server = await build(config, { database: t.app.database, clock: t.clock, startJobs: true });
    try {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (await remaining(userId)).sessions.length > 3) {
        await new Promise((r) => setTimeout(r, 200));
      }
      expect((await remaining(userId)).sessions).toEqual(EXPECTED_KEPT.sessions);
    } finally {
      await server.close();
    }
    // Stopped: rows that become garbage now stay until something sweeps again.
    const second = await seed();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await remaining(second.userId)).sessions.length).toBe(6);
  });

  it.skipIf(!usingPostgres())(
    "does nothing while another instance holds the sweeper lock (real PostgreSQL)",
    async () => {
      const { userId } = await seed();
      const db = t.app.ctx.db;
      let release: () => void = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      let locked: () => void = () => {};
      const lockTaken = new Promise<void>((r) => {
        locked = r;
      });
      const holder = db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${0x7e55e7c})`);
        locked();
        await held;
      });
      await lockTaken;
      try {
        const report = await sweep(t.app.ctx);
        expect(report.ran).toBe(false);
        expect((await remaining(userId)).sessions.length).toBeGreaterThan(3);
      } finally {
        release();
        await holder;
      }
      expect((await sweep(t.app.ctx)).ran).toBe(true);
      expect((await remaining(userId)).sessions).toEqual(EXPECTED_KEPT.sessions);
    },
  );
});
