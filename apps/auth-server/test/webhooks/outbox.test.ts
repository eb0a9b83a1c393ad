import { backchannelLogoutJobs } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addSeconds } from "../../src/libraries/clock.ts";
import { DELIVERY } from "../../src/libraries/jobs/backchannel.ts";
import { claimDueJobs, markJobDelivered, markJobFailed } from "../../src/queries/backchannel.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, registerClient, sessionCookie } from "../oauth/helpers.ts";

/**
 * The shared outbox loop (libraries/jobs/outbox.ts) across processes: a claim is a lease in the row, so an instance
 * that stalled past its lease (another instance meanwhile claimed and delivered the row) cannot undo that delivery
 * when it finally records its own failure.
 */
let t: TestApp;

beforeAll(async () => {
  t = await buildOAuthApp();
});
afterAll(() => t.close());

describe("outbox leases across instances", () => {
  it("back-channel logout: a stale instance's failure does not undo another instance's delivery", async () => {
    const client = await registerClient(t.app);
    const user = await createUser(t.app);
    const { session } = await sessionCookie(t.app, user);
    const [job] = await t.app.ctx.db
      .insert(backchannelLogoutJobs)
      .values({
        clientId: client.client.id,
        sessionId: session.id,
        userId: user.id,
        logoutUri: "https://rp.example/bc",
      })
      .returning();
    const now = t.clock.now();
    // Instance A claims the job, then stalls beyond its lease.
    const a = await claimDueJobs(t.app.ctx.db, now, addSeconds(now, DELIVERY.leaseSeconds), 10);
    expect(a.map((c) => c.job.id)).toEqual([job!.id]);
    expect(await claimDueJobs(t.app.ctx.db, now, addSeconds(now, DELIVERY.leaseSeconds), 10)).toEqual([]);
    // Instance B finds it due once the lease has passed, and delivers it.
    const later = addSeconds(now, DELIVERY.leaseSeconds + 1);
    const b = await claimDueJobs(t.app.ctx.db, later, addSeconds(later, DELIVERY.leaseSeconds), 10);
    expect(b.map((c) => c.job.id)).toEqual([job!.id]);
    expect(b[0]!.job.attempts).toBe(2);
    await markJobDelivered(t.app.ctx.db, job!.id, later);
    // A wakes up and records its failure as final: the delivery stands.
    await markJobFailed(t.app.ctx.db, job!.id, { lastError: "timeout", nextAttemptAt: later, abandonedAt: later });
    const [row] = await t.app.ctx.db.select().from(backchannelLogoutJobs).where(eq(backchannelLogoutJobs.id, job!.id));
    expect(row).toMatchObject({ deliveredAt: later, abandonedAt: null, lastError: null });
  });
});
