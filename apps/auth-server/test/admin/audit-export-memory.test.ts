import type { AddressInfo } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { seedAdmin } from "./helpers.ts";

const EVENTS = 100_000;
/** Each event carries ~600 bytes of details, so the whole export is ~80 MB: far more than the bound below. */
const PAD = 600;
const HEAP_BOUND_BYTES = 48 * 1024 * 1024;

// The heap is measured after a full collection, so only what the export keeps alive counts, not garbage the next
// collection would free (which differs by driver: heapUsed without a collection peaked at +97 MB on PostgreSQL).
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;
const liveHeap = () => {
  collect();
  return process.memoryUsage().heapUsed;
};

let t: TestApp;
let authorization: string;
let base: string;

beforeAll(async () => {
  t = await buildTestApp();
  ({ authorization } = await seedAdmin(t.app));
  await t.app.ctx.db.execute(sql`
    insert into audit_events (event, outcome, ip, details)
    select 'load.synthetic', 'success', '198.51.100.' || (g % 250), jsonb_build_object('n', g, 'pad', repeat('x', ${PAD}))
    from generate_series(1, ${EVENTS}) as g`);
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}, 120_000);
afterAll(() => t.close());

describe("audit export of 100k events", () => {
  for (const format of ["ndjson", "csv"] as const) {
    it(`streams every event as ${format} while the heap stays within ${HEAP_BOUND_BYTES / 2 ** 20} MB of where it started`, async () => {
      const start = liveHeap();
      let peak = start;
      const response = await fetch(`${base}/admin/api/v1/audit-events/export?event=load.synthetic&format=${format}`, {
        headers: { authorization },
      });
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      let bytes = 0;
      let newlines = 0;
      let chunks = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
        for (const byte of value) if (byte === 10) newlines++;
        if (++chunks % 50 === 0) peak = Math.max(peak, liveHeap());
      }
      peak = Math.max(peak, liveHeap());
      expect(newlines).toBe(format === "csv" ? EVENTS + 1 : EVENTS);
      expect(bytes).toBeGreaterThan(EVENTS * PAD);
      console.log(
        `${format}: ${(bytes / 2 ** 20).toFixed(1)} MB streamed, heap peak +${((peak - start) / 2 ** 20).toFixed(1)} MB`,
      );
      expect(peak - start).toBeLessThan(HEAP_BOUND_BYTES);
    }, 180_000);
  }
});
