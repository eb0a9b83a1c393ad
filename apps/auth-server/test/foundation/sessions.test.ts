import { randomBytes } from "node:crypto";
import { sessions, users } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addSeconds } from "../../src/libraries/clock.ts";
import { listSessions, sessionValidity, slideIdle } from "../../src/libraries/sessions.ts";
import { findLiveSessionById } from "../../src/queries/sessions.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

/** "Session is live" in SQL (queries' sessionIsLive) and in JS (sessionValidity) say the same thing. */
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ SESSION_IDLE_TTL_SECONDS: "600", SESSION_ABSOLUTE_TTL_SECONDS: "3600" });
}, 0);
afterAll(async () => t?.close());

describe("sessionValidity", () => {
  const now = new Date("2030-01-01T00:00:00Z");
  const later = addSeconds(now, 1);
  const earlier = addSeconds(now, -1);
  it.each([
    ["live", { revokedAt: null, expiresAt: later, idleExpiresAt: later }],
    ["ended", { revokedAt: earlier, expiresAt: later, idleExpiresAt: later }],
    ["expired", { revokedAt: null, expiresAt: now, idleExpiresAt: later }],
    ["expired", { revokedAt: null, expiresAt: later, idleExpiresAt: now }],
    ["expired", { revokedAt: null, expiresAt: earlier, idleExpiresAt: later }],
    ["ended", { revokedAt: earlier, expiresAt: earlier, idleExpiresAt: earlier }],
  ] as const)("is %s for %o", (expected, session) => {
    expect(sessionValidity(session, now)).toBe(expected);
  });
});

describe("slideIdle", () => {
  const config = { sessions: { idleTtlSeconds: 600, absoluteTtlSeconds: 3600 } };
  const now = new Date("2030-01-01T00:00:00Z");
  it("moves the idle deadline to now + idle TTL and records the activity", () => {
    expect(slideIdle({ expiresAt: addSeconds(now, 3000) }, now, config)).toEqual({
      lastSeenAt: now,
      idleExpiresAt: addSeconds(now, 600),
    });
  });
  it("never past the absolute expiry", () => {
    expect(slideIdle({ expiresAt: addSeconds(now, 100) }, now, config).idleExpiresAt).toEqual(addSeconds(now, 100));
  });
});

describe("the SQL liveness condition agrees with sessionValidity", () => {
  it("at the boundaries of revocation, absolute and idle expiry", async () => {
    const { db } = t.app.ctx;
    const now = t.clock.now();
    const [user] = await db
      .insert(users)
      .values({ email: `live-${randomBytes(4).toString("hex")}@example.com`, createdAt: now, updatedAt: now })
      .returning();
    if (!user) throw new Error("no user");
    const shapes = [
      { expiresAt: addSeconds(now, 60), idleExpiresAt: addSeconds(now, 60), revokedAt: null },
      { expiresAt: now, idleExpiresAt: addSeconds(now, 60), revokedAt: null },
      { expiresAt: addSeconds(now, 60), idleExpiresAt: now, revokedAt: null },
      { expiresAt: addSeconds(now, 60), idleExpiresAt: addSeconds(now, -1), revokedAt: null },
      { expiresAt: addSeconds(now, 60), idleExpiresAt: addSeconds(now, 60), revokedAt: addSeconds(now, -5) },
      { expiresAt: addSeconds(now, 1), idleExpiresAt: addSeconds(now, 1), revokedAt: null },
    ];
    const rows = await db
      .insert(sessions)
      .values(
        shapes.map((shape) => ({
          ...shape,
          userId: user.id,
          tokenHash: randomBytes(32).toString("hex"),
          authenticatedAt: addSeconds(now, -10),
          lastSeenAt: addSeconds(now, -10),
          amr: ["pwd"],
        })),
      )
      .returning();
    const expected = rows.filter((s) => sessionValidity(s, now) === "live").map((s) => s.id);
    expect(expected).toHaveLength(2);
    expect((await listSessions(t.app.ctx, user.id)).map((s) => s.id).sort()).toEqual([...expected].sort());
    for (const row of rows) {
      expect(Boolean(await findLiveSessionById(db, row.id, now)), row.id).toBe(expected.includes(row.id));
    }
  });
});
