import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { runWithDeadline } from "@tessera/db";
import { describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { safeReturnTo } from "../../src/libraries/accounts/return-to.ts";
import { normalizeEmail } from "../../src/libraries/accounts/schemas.ts";
import { accountEmail } from "../../src/libraries/mailer/messages.ts";
import {
  argon2Gate,
  dummyHash,
  Gate,
  hashIsWeaker,
  hashPassword,
  isCommonPassword,
  passwordProblems,
  verifyPassword,
} from "../../src/libraries/passwords.ts";
import { deviceName } from "../../src/routes/pages/account.ts";
import { continuationFrom } from "../../src/routes/pages/render.ts";

const params = testConfig().passwords;

describe("passwords", () => {
  it("hashes with argon2id at the configured (OWASP minimum) parameters and verifies exactly as typed", async () => {
    const hash = await hashPassword(params, "  Spaces Matter  ");
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(params, hash, "  Spaces Matter  ")).toEqual({ ok: true, needsRehash: false });
    expect((await verifyPassword(params, hash, "Spaces Matter")).ok).toBe(false);
    expect((await verifyPassword(params, hash, "  spaces matter  ")).ok).toBe(false);
    // A malformed stored hash is a mismatch, not an exception.
    expect(await verifyPassword(params, "not-a-phc-string", "x")).toEqual({ ok: false, needsRehash: false });
  });

  it("asks for a re-hash when the stored parameters are lower than configured", async () => {
    const hash = await hashPassword(params, "some passphrase");
    expect(hashIsWeaker(params, hash)).toBe(false);
    expect(hashIsWeaker({ ...params, argon2MemoryKib: 65536 }, hash)).toBe(true);
    expect(hashIsWeaker({ ...params, argon2TimeCost: 3 }, hash)).toBe(true);
    expect(hashIsWeaker({ ...params, argon2Parallelism: 2 }, hash)).toBe(true);
    expect(hashIsWeaker(params, "$argon2i$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")).toBe(true);
    // Answers are remembered per parameter part of the hash: another stored hash, with other parameters, under the
    // same configuration gets its own answer, before and after the first one's.
    expect(hashIsWeaker(params, "$argon2id$v=19$m=8192,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")).toBe(true);
    expect(hashIsWeaker(params, "$argon2id$v=19$m=19456,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")).toBe(true);
    expect(hashIsWeaker(params, hash)).toBe(false);
    expect(hashIsWeaker(params, "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")).toBe(false);
    const upgraded = await verifyPassword({ ...params, argon2TimeCost: 3 }, hash, "some passphrase");
    expect(upgraded).toEqual({ ok: true, needsRehash: true });
  });

  it("refuses the configurable floor, allows long passphrases, and checks the common-password list", () => {
    expect(passwordProblems(params, "1234567")).toEqual([{ field: "password", message: "Use at least 8 characters." }]);
    expect(passwordProblems({ ...params, minLength: 12 }, "elevenchars")[0]?.message).toBe(
      "Use at least 12 characters.",
    );
    expect(passwordProblems(params, "ü".repeat(8))).toEqual([]);
    expect(passwordProblems(params, "x".repeat(64).replace(/^x/, "y"))).toEqual([]);
    expect(isCommonPassword("password")).toBe(true);
    expect(isCommonPassword("PASSWORD")).toBe(true);
    expect(isCommonPassword("iloveyou")).toBe(true);
    expect(isCommonPassword("correct horse battery staple")).toBe(false);
    expect(passwordProblems(params, "qwertyuiop")[0]?.message).toMatch(/too common/);
    // No composition rules: lower-case words only are fine.
    expect(passwordProblems(params, "purple elephants dance")).toEqual([]);
    expect(passwordProblems(params, "ada@example.com", "password", ["ada@example.com"])[0]?.message).toMatch(
      /email address or name/,
    );
  });
});

describe("the argon2 gate (one computation per core at a time)", () => {
  it("runs at most `limit` tasks at once, all of them in arrival order, and frees a slot when a task fails", async () => {
    const gate = new Gate(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const task = (i: number) => async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      if (i === 1) throw new Error("boom");
      return i;
    };
    const results = await Promise.allSettled(Array.from({ length: 7 }, (_, i) => gate.run(task(i))));
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : "failed"))).toEqual([0, "failed", 2, 3, 4, 5, 6]);
    expect(gate.running).toBe(0);
  });

  it("password hashing and verification go through it, sized to the cores this process may use", async () => {
    expect(argon2Gate.limit).toBe(availableParallelism());
    const hash = await hashPassword(params, "gated password");
    const checks = Array.from({ length: argon2Gate.limit + 3 }, () => verifyPassword(params, hash, "gated password"));
    expect(argon2Gate.running).toBe(argon2Gate.limit);
    expect((await Promise.all(checks)).every((c) => c.ok)).toBe(true);
    expect(argon2Gate.running).toBe(0);
  });
});

describe("the argon2 gate and request deadlines", () => {
  it("a task whose request deadline passed while it waited is not run: DB_DEADLINE_EXCEEDED, and the place goes on", async () => {
    const gate = new Gate(1);
    let release = () => {};
    const first = gate.run(() => new Promise<string>((resolve) => (release = () => resolve("first"))));
    const ran: string[] = [];
    const late = runWithDeadline(performance.now() + 30, () =>
      gate.run(async () => {
        ran.push("late");
        return "late";
      }),
    );
    const inTime = runWithDeadline(performance.now() + 60_000, () =>
      gate.run(async () => {
        ran.push("in time");
        return "in time";
      }),
    );
    const unscoped = gate.run(async () => {
      ran.push("no deadline");
      return "no deadline";
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    release();
    const results = await Promise.allSettled([first, late, inTime, unscoped]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as { code?: string }).code))).toEqual([
      "first",
      "DB_DEADLINE_EXCEEDED",
      "in time",
      "no deadline",
    ]);
    expect(ran).toEqual(["in time", "no deadline"]);
    expect({ running: gate.running, started: gate.started }).toEqual({ running: 0, started: 3 });
  });

  it("the shared dummy hash, first asked for by a request past its deadline, is made all the same", async () => {
    // Parameters no other test uses, so the dummy hash for them is not made yet.
    const unused = { ...params, argon2MemoryKib: params.argon2MemoryKib + 1 };
    const first = runWithDeadline(performance.now() - 1, () => dummyHash(unused));
    await expect(first).resolves.toMatch(/^\$argon2id\$v=19\$m=19457,/);
    expect(await dummyHash(unused)).toBe(await first);
  });

  it("verifyPassword past its deadline rejects (no verdict), it does not answer a wrong password", async () => {
    const hash = await hashPassword(params, "deadline password");
    const before = argon2Gate.started;
    const expired = runWithDeadline(performance.now() - 1, () => verifyPassword(params, hash, "wrong password"));
    await expect(expired).rejects.toMatchObject({ code: "DB_DEADLINE_EXCEEDED" });
    expect(argon2Gate.started).toBe(before);
  });
});

describe("safeReturnTo (the /login return_to contract)", () => {
  it("keeps same-origin relative paths only", () => {
    expect(safeReturnTo("/authorize?client_id=a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb")).toBe(
      "/authorize?client_id=a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
    );
    expect(safeReturnTo("/account#x")).toBe("/account#x");
    for (const bad of [
      undefined,
      "",
      42,
      "//evil.example",
      "///evil.example",
      "/\\evil.example",
      "\\\\evil.example",
      "https://evil.example",
      "http:/evil.example",
      "javascript:alert(1)",
      "account",
      "/%2F%2Fevil.example",
      "/%5C%5Cevil.example",
      "/\nLocation: x",
      "/%E0%A4%A",
      `/${"a".repeat(5000)}`,
    ]) {
      expect(safeReturnTo(bad), String(bad)).toBe("/account");
    }
  });

  it("reads return_to and client_id from a query, taking client_id from a pending /authorize request", () => {
    expect(continuationFrom({ return_to: "/authorize?client_id=shop&x=1" })).toEqual({
      returnTo: "/authorize?client_id=shop&x=1",
      clientId: "shop",
    });
    expect(continuationFrom({ return_to: "//evil", client_id: ["a", "b"] })).toEqual({
      returnTo: undefined,
      clientId: undefined,
    });
    expect(continuationFrom({ client_id: "bad id with spaces" }).clientId).toBeUndefined();
    expect(continuationFrom(null)).toEqual({ returnTo: undefined, clientId: undefined });
  });
});

describe("emails", () => {
  it("normalizes addresses", () => {
    expect(normalizeEmail("  Ada@Example.COM ")).toBe("ada@example.com");
  });

  it("build links from ISSUER, with text and HTML parts, and escape in HTML", () => {
    const config = testConfig({ ISSUER: "https://id.example.com/", MAIL_FROM_NAME: "Tessera <Dev>" });
    const mail = accountEmail(config, {
      kind: "verify_email",
      to: "ada@example.com",
      token: "t".repeat(43),
      continuation: { returnTo: "/authorize?client_id=a&b=<c>", clientId: "a" },
    });
    expect(mail.subject).toBe("Confirm your email address for Tessera <Dev>");
    const url = `https://id.example.com/verify-email?token=${"t".repeat(43)}&return_to=%2Fauthorize%3Fclient_id%3Da%26b%3D%3Cc%3E&client_id=a`;
    expect(mail.text).toContain(url);
    expect(mail.html).toContain(`href="${url.replace(/&/g, "&amp;")}"`);
    expect(mail.html).toContain("Tessera &lt;Dev&gt;");
    expect(mail.html).not.toContain("Tessera <Dev>");
    for (const kind of ["registration_attempt", "email_changed", "password_changed"] as const) {
      const m = accountEmail(config, { kind, to: "ada@example.com" });
      expect(m.text.length).toBeGreaterThan(20);
      expect(m.html).toContain("<!doctype html>");
      expect(m.text).not.toMatch(/token=/);
    }
  });
});

describe("deviceName", () => {
  it("names common browsers and systems", () => {
    expect(deviceName(null)).toBe("Unknown device");
    expect(
      deviceName("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36 Edg/130.0"),
    ).toBe("Edge on Windows");
    expect(deviceName("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Gecko/20100101 Firefox/131.0")).toBe(
      "Firefox on macOS",
    );
    expect(deviceName("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1")).toBe(
      "Safari on iOS",
    );
    expect(deviceName("curl/8.5.0")).toBe("curl/8.5.0");
  });
});
