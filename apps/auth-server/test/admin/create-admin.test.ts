import { users } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { createAdmin } from "../../src/libraries/admin.ts";
import { TestClock } from "../../src/libraries/clock.ts";

describe("createAdmin", () => {
  it("concurrent first-admin creations: exactly one wins, the others get ADMIN_EXISTS", async () => {
    const database = await createTestDatabase();
    try {
      const deps = { db: database.db, clock: new TestClock(), config: testConfig() };
      const results = await Promise.allSettled(
        [1, 2, 3, 4].map((n) =>
          createAdmin(deps, { email: `admin${n}@example.com`, password: "a long password here" }),
        ),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results.filter((r): r is PromiseRejectedResult => r.status === "rejected")) {
        expect(r.reason).toMatchObject({ code: "ADMIN_EXISTS", status: 409 });
      }
      expect(await database.db.select().from(users).where(eq(users.isAdmin, true))).toHaveLength(1);
    } finally {
      await database.close();
    }
  });

  it("promotes an existing account, stores an argon2id hash and never the password", async () => {
    const database = await createTestDatabase();
    try {
      const deps = { db: database.db, clock: new TestClock(), config: testConfig() };
      await database.db.insert(users).values({ email: "member@example.com" });
      const { user, created } = await createAdmin(deps, {
        email: "Member@Example.com",
        password: "the admin password",
      });
      expect(created).toBe(false);
      expect(user.isAdmin).toBe(true);
      expect(user.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect(JSON.stringify(user)).not.toContain("the admin password");
      await expect(createAdmin(deps, { email: "x@example.com", password: "password" })).rejects.toMatchObject({
        code: "WEAK_PASSWORD",
      });
    } finally {
      await database.close();
    }
  });
});
