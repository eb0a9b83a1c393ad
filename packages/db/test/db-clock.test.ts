import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { DatabaseClock } from "../src/db-clock.ts";
import { runWithDeadline } from "../src/deadline.ts";

/**
 * The request deadline in the database server's clock (src/db-clock.ts), which the one-statement refresh rotation
 * carries so that it writes nothing once the deadline has passed on the server.
 */
describe("the database server's clock", () => {
  it("is unknown until measured, and there is no deadline outside a request", () => {
    const clock = new DatabaseClock();
    expect(clock.requestDeadline()).toBeNull();
    expect(runWithDeadline(performance.now() + 1000, () => clock.requestDeadline())).toBeUndefined();
  });

  it("moves the deadline by the server's offset, and earlier by half the measuring round trip", async () => {
    // A server whose clock runs 5 s ahead of ours, and whose answer takes ~40 ms to come back.
    const ahead = {
      unsafe: async () => {
        const ms = Date.now() + 5000;
        await sleep(40);
        return [{ ms }];
      },
    } as unknown as postgres.Sql<Record<string, never>>;
    const clock = new DatabaseClock();
    await clock.sample(ahead);
    const at = runWithDeadline(performance.now() + 1000, () => clock.requestDeadline());
    if (typeof at !== "string") throw new Error("no deadline");
    const lead = Date.parse(at) - Date.now();
    // 1000 ms left + 5000 ms ahead - (the ~20 ms half round trip the reading is off by) - (that half again, and 1 ms).
    expect(lead).toBeGreaterThan(6000 - 80);
    expect(lead).toBeLessThan(6000 - 20);
  });
});

describe.skipIf(!process.env.TEST_DATABASE_URL)("the database server's clock on PostgreSQL", () => {
  const client = postgres(process.env.TEST_DATABASE_URL ?? "", { max: 1, onnotice: () => {} });
  afterAll(async () => client.end({ timeout: 1 }));

  it("hands out a deadline the server sees as not yet passed within it, and as passed after it", async () => {
    const clock = new DatabaseClock();
    await clock.sample(client);
    const deadlineAt = performance.now() + 200;
    const at = runWithDeadline(deadlineAt, () => clock.requestDeadline());
    if (typeof at !== "string") throw new Error("no deadline");
    const check = async () =>
      (await client.unsafe<{ ok: boolean }[]>("select clock_timestamp() <= $1::timestamptz as ok", [at]))[0]?.ok;
    expect(await check()).toBe(true);
    await sleep(Math.max(0, deadlineAt - performance.now()) + 20);
    expect(await check()).toBe(false);
  });
});
