import { auditEvents } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordSignInFailure } from "../../src/libraries/throttle/failures.ts";
import { seedAdmin } from "../admin/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

let t: TestApp;
let auth: string;
let adminId: string;
const BASE = "/admin/api/v1/ip-suspensions";

beforeAll(async () => {
  t = await buildTestApp({ THROTTLE_IP_MAX_FAILURES: "3", THROTTLE_IP_SUSPEND_BASE_SECONDS: "120" });
  ({ authorization: auth, userId: adminId } = await seedAdmin(t.app));
});
afterAll(() => t.close());

async function suspend(ip: string) {
  for (let i = 0; i < 3; i++) {
    await recordSignInFailure(t.app.ctx, { ip, userAgent: "x" }, { email: `v${i}@example.com`, reason: "password" });
  }
}

describe("admin: IP suspensions", () => {
  it("needs an admin", async () => {
    const res = await t.app.inject({ method: "GET", url: BASE });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe("UNAUTHENTICATED");
  });

  it("lists live suspensions and lifts one, audited with the admin as actor", async () => {
    await suspend("203.0.113.7");
    await suspend("2001:db8:1:2::5");
    const list = await t.app.inject({ method: "GET", url: BASE, headers: { authorization: auth } });
    expect(list.statusCode).toBe(200);
    const until = new Date(t.clock.now().getTime() + 120_000).toISOString();
    expect(list.json()).toEqual({
      ip_suspensions: [
        // IPv6 is counted per /64.
        { ip: "2001:db8:1:2::", suspended_until: until, suspensions: 1 },
        { ip: "203.0.113.7", suspended_until: until, suspensions: 1 },
      ],
    });

    const lift = await t.app.inject({ method: "DELETE", url: `${BASE}/203.0.113.7`, headers: { authorization: auth } });
    expect(lift.statusCode).toBe(200);
    expect(lift.json()).toEqual({ ip: "203.0.113.7", suspended_until: null, suspensions: 0 });
    // Any address in the /64 lifts the suspension of its block.
    const lift6 = await t.app.inject({
      method: "DELETE",
      url: `${BASE}/2001:db8:1:2::abcd`,
      headers: { authorization: auth },
    });
    expect(lift6.statusCode).toBe(200);
    expect((await t.app.inject({ method: "GET", url: BASE, headers: { authorization: auth } })).json()).toEqual({
      ip_suspensions: [],
    });
    const [event] = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "throttle.ip_lifted"));
    expect(event).toMatchObject({ actorId: adminId, outcome: "success", details: { ip: "203.0.113.7" } });
  });

  it("answers 404 for an IP that is not suspended and 400 for something that is not an IP", async () => {
    const missing = await t.app.inject({
      method: "DELETE",
      url: `${BASE}/198.51.100.99`,
      headers: { authorization: auth },
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatchObject({ code: "NOT_FOUND", message: "That IP address is not suspended." });
    const bad = await t.app.inject({ method: "DELETE", url: `${BASE}/not-an-ip`, headers: { authorization: auth } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: "VALIDATION_FAILED", fields: [{ field: "ip" }] });
  });
});
