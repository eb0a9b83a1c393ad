import { auditEvents } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHART, chartOf, overview } from "../../src/libraries/admin/overview.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser } from "../oauth/helpers.ts";

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

describe("console overview", () => {
  it("counts the last 24 hours only, and charts sign-ins per hour over 7 days", async () => {
    const now = t.clock.now();
    const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);
    await createUser(t.app);
    await t.app.ctx.db.insert(auditEvents).values([
      { event: "user.signed_in", outcome: "success", at: hoursAgo(1) },
      { event: "user.signed_in", outcome: "success", at: hoursAgo(1) },
      { event: "user.signed_in", outcome: "success", at: hoursAgo(30) },
      { event: "user.signed_in", outcome: "success", at: hoursAgo(24 * 8) },
      { event: "user.sign_in_failed", outcome: "failure", at: hoursAgo(2) },
      { event: "token.reuse_detected", outcome: "failure", at: hoursAgo(3) },
    ]);
    const { counts, chart } = await overview(t.app.ctx);
    expect(counts).toMatchObject({
      users: 1,
      signIns24h: 2,
      signInFailures24h: 1,
      reuseDetections24h: 1,
      backchannelQueue: 0,
    });
    expect(chart.total).toBe(3);
    expect(chart.max).toBe(2);
    expect(chart.bars).toHaveLength(2);
    const tallest = chart.bars.find((b) => b.h === CHART.height);
    expect(tallest?.y).toBe(0);
    expect(chart.ticks).toHaveLength(7);
  });

  it("draws nothing (and divides by nothing) when there are no sign-ins", () => {
    const chart = chartOf([], new Date("2030-01-01T12:34:00Z"));
    expect(chart).toMatchObject({ bars: [], max: 0, total: 0 });
    expect(chart.ticks[0]).toEqual({ x: 0, label: "12-25" });
  });
});
