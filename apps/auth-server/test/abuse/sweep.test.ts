import { accountThrottles, ipSuspensions } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweep } from "../../src/libraries/jobs/sweeper.ts";
import { recordSignInFailure } from "../../src/libraries/throttle/failures.ts";
import { accountKey } from "../../src/libraries/throttle/keys.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

/** The sweeper forgets failed sign-in counters and IP windows long after they stopped mattering, and only those. */
let t: TestApp;
const RETENTION = 7 * 86400;

beforeAll(async () => {
  t = await buildTestApp({ SWEEPER_RETENTION_SECONDS: String(RETENTION) });
});
afterAll(() => t.close());

describe("sweeping throttling state", () => {
  it("deletes counters whose last failure and lock ended before the retention, keeps recent ones", async () => {
    const fail = (email: string, ip: string) =>
      recordSignInFailure(t.app.ctx, { ip, userAgent: "x" }, { email, reason: "password" });
    await fail("old@example.com", "192.0.2.1");
    t.clock.advance(RETENTION + 60);
    await fail("recent@example.com", "192.0.2.2");

    const report = await sweep(t.app.ctx);
    expect(report.deleted.account_throttles).toBe(1);
    expect(report.deleted.ip_suspensions).toBe(1);
    const keys = (await t.app.ctx.db.select().from(accountThrottles)).map((r) => r.key);
    expect(keys).toEqual([accountKey(t.app.ctx.config, "recent@example.com")]);
    expect((await t.app.ctx.db.select().from(ipSuspensions)).map((r) => r.ip)).toEqual(["192.0.2.2"]);
  });
});
