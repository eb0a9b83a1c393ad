import { accountThrottles, sessions } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { argon2Gate, dummyHash } from "../../src/libraries/passwords.ts";
import { type AccountsTestApp, buildAccountsApp, PASSWORD } from "../accounts/helpers.ts";
import { createUser } from "../oauth/helpers.ts";

/**
 * A sign-in that waits at the argon2 gate (libraries/passwords.ts: one computation per core at a time) past its
 * request deadline has been answered 503 by then (http/deadline.ts). When its turn comes it must not hash (work for
 * nobody, taken from the sign-ins queued behind it) and must not count as a wrong password against the account.
 */
const DEADLINE_MS = 500;
let t: AccountsTestApp;

beforeAll(async () => {
  t = await buildAccountsApp({ REQUEST_DEADLINE_MS: String(DEADLINE_MS), RATE_LIMIT_LOGIN: "10000/60" });
});
afterAll(() => t.close());

const login = (email: string, password: string) =>
  t.app.inject({
    method: "POST",
    url: "/api/v1/login",
    headers: { "content-type": "application/json" },
    payload: JSON.stringify({ email, password }),
  });

describe("a sign-in queued at the argon2 gate past its deadline", () => {
  for (const which of ["a wrong password", "the right password", "an unknown email"]) {
    it(`with ${which}: 503 DATABASE_UNAVAILABLE, no hash, nothing counted, no session`, async () => {
      const email = `gated-${which.replace(/\W+/g, "-")}@example.com`;
      if (which !== "an unknown email") await createUser(t.app, { email, password: PASSWORD });
      const sessionsBefore = (await t.app.ctx.db.select().from(sessions)).length;
      // The shared dummy hash an unknown email is verified against is made once, for all (accounts/units.test.ts).
      await dummyHash(t.app.ctx.config.passwords);

      // Every place at the gate is taken until the sign-in's deadline has passed.
      const releases: (() => void)[] = [];
      const blockers = Array.from({ length: argon2Gate.limit }, () =>
        argon2Gate.run(() => new Promise<void>((resolve) => releases.push(resolve))),
      );
      const startedBefore = argon2Gate.started;
      const response = await login(email, which === "the right password" ? PASSWORD : "wrong password!");
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ error: { code: "DATABASE_UNAVAILABLE", status: 503 } });

      for (const release of releases) release();
      await Promise.all(blockers);
      for (let i = 0; argon2Gate.running > 0; i++) {
        if (i > 200) throw new Error("the gate never emptied");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(argon2Gate.started).toBe(startedBefore);
      expect(await t.app.ctx.db.select().from(accountThrottles)).toEqual([]);
      expect((await t.app.ctx.db.select().from(sessions)).length).toBe(sessionsBefore);

      // The account is untouched: the next sign-in with the right password goes through.
      if (which !== "an unknown email") expect((await login(email, PASSWORD)).statusCode).toBe(200);
      else expect((await login(email, PASSWORD)).json()).toMatchObject({ error: { code: "INVALID_CREDENTIALS" } });
    });
  }
});
