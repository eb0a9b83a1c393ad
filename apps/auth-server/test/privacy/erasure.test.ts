import { auditEvents, sessions } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweep } from "../../src/libraries/jobs/sweeper.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, PASSWORD } from "../accounts/helpers.ts";
import { createUser } from "../oauth/helpers.ts";

/** Erasure (#16): deletion ends every session and is recorded without personal data; old audit rows lose PII. */
let t: AccountsTestApp;

beforeAll(async () => {
  t = await buildAccountsApp({ RATE_LIMIT_LOGIN: "1000/60", AUDIT_PII_RETENTION_DAYS: "30" });
});
afterAll(() => t.close());

const UA = "ErasureBrowser/9.9";

describe("account deletion", () => {
  it("ends every session of the user and records itself with no IP or user agent", async () => {
    const email = "erase-me@example.com";
    const user = await createUser(t.app, { email, password: PASSWORD });
    const phone = new Browser(t.app);
    const laptop = new Browser(t.app);
    for (const b of [phone, laptop]) await b.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const res = await t.app.inject({
      method: "POST",
      url: "/api/v1/me/delete",
      headers: { "content-type": "application/json", "user-agent": UA, cookie: laptop.cookieHeader() },
      payload: { currentPassword: PASSWORD },
    });
    expect(res.statusCode).toBe(204);
    const rows = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(rows).toHaveLength(2);
    for (const s of rows) expect(s).toMatchObject({ revokedReason: "account_deleted", ip: null, userAgent: null });
    expect((await phone.json("GET", "/api/v1/me")).statusCode).toBe(401);
    const [deleted] = await t.app.ctx.db.select().from(auditEvents).where(eq(auditEvents.event, "user.deleted"));
    expect(deleted).toMatchObject({ userId: user.id, ip: null, userAgent: null, details: null });
  });
});

describe("audit retention", () => {
  it("after AUDIT_PII_RETENTION_DAYS audit events keep no email, IP or user agent; newer ones keep them", async () => {
    const db = t.app.ctx.db;
    const now = t.clock.now();
    const old = new Date(now.getTime() - 31 * 86_400_000);
    const recent = new Date(now.getTime() - 29 * 86_400_000);
    const userId = "6f1c1f5e-8a51-4c51-9a58-2f8d6b3f0a11";
    const details = {
      ip: "203.0.113.9",
      before: { email: "old-address@example.com" },
      after: { email: "x@example.org" },
    };
    await db.insert(auditEvents).values([
      { at: old, event: "admin.user_updated", outcome: "success", userId, ip: "198.51.100.1", userAgent: UA, details },
      { at: old, event: "user.login", outcome: "success", userId, ip: "198.51.100.2", userAgent: UA },
      { at: recent, event: "user.login", outcome: "success", userId, ip: "198.51.100.3", userAgent: UA },
    ]);
    const report = await sweep(t.app.ctx);
    expect(report.scrubbed.audit_events).toBeGreaterThanOrEqual(2);
    const rows = await db.select().from(auditEvents).where(eq(auditEvents.userId, userId)).orderBy(auditEvents.id);
    expect(rows.map((r) => [r.event, r.ip, r.userAgent, r.details])).toEqual([
      [
        "admin.user_updated",
        null,
        null,
        { before: { email: "redacted@invalid" }, after: { email: "redacted@invalid" } },
      ],
      ["user.login", null, null, null],
      ["user.login", "198.51.100.3", UA, null],
    ]);
    const text = JSON.stringify(rows.slice(0, 2));
    for (const pii of ["198.51.100", "203.0.113.9", "example.com", "example.org", UA]) expect(text).not.toContain(pii);
    expect((await sweep(t.app.ctx)).scrubbed.audit_events).toBe(0);
  });
});
