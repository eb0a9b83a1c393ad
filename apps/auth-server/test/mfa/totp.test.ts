import { auditEvents, recoveryCodes, totpFactors, users } from "@tessera/db";
import { createTestDatabase } from "@tessera/db/testing";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import type { CoreContext } from "../../src/context.ts";
import { AppError } from "../../src/errors/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { decrypt, sha256 } from "../../src/libraries/crypto.ts";
import { completeMfaChallenge, createMfaChallenge, peekMfaChallenge } from "../../src/libraries/mfa/challenge.ts";
import {
  beginTotpEnrolment,
  confirmTotpEnrolment,
  disableTotp,
  regenerateRecoveryCodes,
} from "../../src/libraries/mfa/enrolment.ts";
import { currentCode, normalizeRecoveryCode, totpStatus, useSecondFactor } from "../../src/libraries/mfa/factor.ts";
import { checkSignIn } from "../../src/libraries/throttle/gate.ts";
import { secondFactorKey } from "../../src/libraries/throttle/keys.ts";
import { findAccountThrottle } from "../../src/queries/throttle.ts";

/** The TOTP rules against a real migrated database; the HTTP flows are in the other files of this folder. */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let deps: CoreContext;
let clock: TestClock;
const meta = { ip: "192.0.2.1", userAgent: "vitest" };

beforeAll(async () => {
  database = await createTestDatabase();
  clock = new TestClock(new Date("2026-03-01T12:00:00Z"));
  deps = { db: database.db, clock, config: testConfig({ MFA_CHALLENGE_MAX_ATTEMPTS: "3" }) };
});
afterAll(async () => database.close());

async function newUser(email: string) {
  const [user] = await database.db.insert(users).values({ email, emailVerifiedAt: clock.now() }).returning();
  if (!user) throw new Error("no user");
  return user;
}

async function codeOf(promise: Promise<unknown>): Promise<string | null> {
  return promise.then(
    () => null,
    (e: unknown) => (e instanceof AppError ? e.code : String(e)),
  );
}

async function enrolled(email: string) {
  const user = await newUser(email);
  const enrolment = await beginTotpEnrolment(deps, meta, user);
  const { recoveryCodes: codes } = await confirmTotpEnrolment(deps, meta, {
    userId: user.id,
    code: currentCode(enrolment.secret, clock.now()),
  });
  return { user, secret: enrolment.secret, codes };
}

describe("enrolment", () => {
  it("stores the secret encrypted, bound to the user, and shows it as text and as a QR code", async () => {
    const user = await newUser("enrol@example.com");
    const enrolment = await beginTotpEnrolment(deps, meta, user);
    expect(enrolment.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(enrolment.otpauthUri).toBe(
      `otpauth://totp/Tessera:enrol%40example.com?issuer=Tessera&secret=${enrolment.secret}&algorithm=SHA1&digits=6&period=30`,
    );
    expect(enrolment.qrCodeDataUrl).toMatch(/^data:image\/svg\+xml;base64,/);
    expect(Buffer.from(enrolment.qrCodeDataUrl.split(",")[1] ?? "", "base64").toString()).toContain("<svg");
    const [row] = await database.db.select().from(totpFactors).where(eq(totpFactors.userId, user.id));
    expect(row?.secretEncrypted).not.toContain(enrolment.secret);
    expect(decrypt(deps.config.masterKey, row?.secretEncrypted ?? "", `totp:${user.id}`)).toBe(enrolment.secret);
    expect(() => decrypt(deps.config.masterKey, row?.secretEncrypted ?? "", "totp:someone-else")).toThrow();
    expect(row?.confirmedAt).toBeNull();
    expect(await totpStatus(deps, user.id)).toEqual({ enabled: false, pending: true, recoveryCodesLeft: 0 });
  });

  it("confirms with a code and returns ten single-use recovery codes stored as SHA-256", async () => {
    const user = await newUser("confirm@example.com");
    const { secret } = await beginTotpEnrolment(deps, meta, user);
    expect(await codeOf(confirmTotpEnrolment(deps, meta, { userId: user.id, code: "000000" }))).toBe("INVALID_OTP");
    const { recoveryCodes: codes } = await confirmTotpEnrolment(deps, meta, {
      userId: user.id,
      code: currentCode(secret, clock.now()),
    });
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/);
    const stored = await database.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, user.id));
    expect(stored.map((r) => r.codeHash).sort()).toEqual(codes.map((c) => sha256(c.replace(/-/g, ""))).sort());
    expect(await totpStatus(deps, user.id)).toEqual({ enabled: true, pending: false, recoveryCodesLeft: 10 });
    // Enrolling again needs disabling first.
    expect(await codeOf(beginTotpEnrolment(deps, meta, user))).toBe("MFA_ALREADY_ENABLED");
    const events = await database.db.select().from(auditEvents).where(eq(auditEvents.userId, user.id));
    expect(events.map((e) => `${e.event}:${e.outcome}`)).toEqual([
      "mfa.enrolment_started:success",
      "mfa.enrolment_confirmed:failure",
      "mfa.enabled:success",
    ]);
  });
});

describe("codes", () => {
  it("accepts the current code once: a replay of the same step, or an earlier step, is rejected", async () => {
    const { user, secret } = await enrolled("replay@example.com");
    clock.advance(30);
    const code = currentCode(secret, clock.now());
    expect(await useSecondFactor(deps, database.db, user.id, code)).toBe("otp");
    expect(await useSecondFactor(deps, database.db, user.id, code)).toBeNull();
    // The previous step's code is within the drift window but older than the last used step.
    expect(
      await useSecondFactor(deps, database.db, user.id, currentCode(secret, new Date(clock.now().getTime() - 30_000))),
    ).toBeNull();
    clock.advance(30);
    expect(
      await useSecondFactor(deps, database.db, user.id, currentCode(secret, clock.now()).replace(/^(\d{3})/, "$1 ")),
    ).toBe("otp");
    expect(await useSecondFactor(deps, database.db, user.id, "12345")).toBeNull();
  });

  it("rejects parallel uses of one code except one", async () => {
    const { user, secret } = await enrolled("parallel-otp@example.com");
    clock.advance(30);
    const code = currentCode(secret, clock.now());
    const results = await Promise.all(
      Array.from({ length: 8 }, () => useSecondFactor(deps, database.db, user.id, code)),
    );
    expect(results.filter((r) => r === "otp")).toHaveLength(1);
  });

  it("accepts each recovery code once, in any case and with or without dashes", async () => {
    const { user, codes } = await enrolled("recovery@example.com");
    const [first, second] = codes as [string, string];
    expect(await useSecondFactor(deps, database.db, user.id, first.toUpperCase())).toBe("recovery_code");
    expect(await useSecondFactor(deps, database.db, user.id, first)).toBeNull();
    expect(await useSecondFactor(deps, database.db, user.id, ` ${second.replace(/-/g, "")} `)).toBe("recovery_code");
    expect((await totpStatus(deps, user.id)).recoveryCodesLeft).toBe(8);
    expect(await useSecondFactor(deps, database.db, user.id, "aaaa-bbbb-cccc-dddd")).toBeNull();
    expect(normalizeRecoveryCode("O1L1-io")).toBe("0111" + "10");
  });

  it("regenerates recovery codes with a valid code; the old ones stop working", async () => {
    const { user, secret, codes } = await enrolled("regen@example.com");
    clock.advance(30);
    const { recoveryCodes: fresh } = await regenerateRecoveryCodes(deps, meta, {
      userId: user.id,
      code: currentCode(secret, clock.now()),
    });
    expect(await useSecondFactor(deps, database.db, user.id, codes[0] ?? "")).toBeNull();
    expect(await useSecondFactor(deps, database.db, user.id, fresh[0] ?? "")).toBe("recovery_code");
    // Every change of the factor is in the audit log, with who and where.
    const events = await database.db.select().from(auditEvents).where(eq(auditEvents.userId, user.id));
    expect(events.map((e) => [e.event, e.outcome, e.ip, e.userAgent])).toEqual([
      ["mfa.enrolment_started", "success", meta.ip, meta.userAgent],
      ["mfa.enabled", "success", meta.ip, meta.userAgent],
      ["mfa.recovery_codes_regenerated", "success", meta.ip, meta.userAgent],
    ]);
  });

  it("codes guessed on the account page (new recovery codes, turning off) count like the code step, and lock it", async () => {
    const { user, secret } = await enrolled("page-guesses@example.com");
    const pageMeta = { ip: "192.0.2.88", userAgent: "vitest" };
    const answers: (string | null)[] = [];
    for (let i = 0; i < 10; i++) {
      const guess = { userId: user.id, code: "000000" };
      answers.push(
        await codeOf(i % 2 ? disableTotp(deps, pageMeta, guess) : regenerateRecoveryCodes(deps, pageMeta, guess)),
      );
      clock.advance(31); // past the (capped) delay
    }
    expect(answers.slice(0, 9).every((c) => c === "INVALID_OTP")).toBe(true);
    expect(answers[9]).toBe("ACCOUNT_LOCKED");
    // Locked: the right code is refused here and at the second sign-in step, until the lock ends.
    const right = () => ({ userId: user.id, code: currentCode(secret, clock.now()) });
    expect(await codeOf(regenerateRecoveryCodes(deps, pageMeta, right()))).toBe("ACCOUNT_LOCKED");
    const { token } = await createMfaChallenge(deps, database.db, user.id);
    expect(await codeOf(completeMfaChallenge(deps, pageMeta, { token, code: currentCode(secret, clock.now()) }))).toBe(
      "ACCOUNT_LOCKED",
    );
    clock.advance(900);
    expect((await regenerateRecoveryCodes(deps, pageMeta, right())).recoveryCodes).toHaveLength(10);
  });

  it("disables only with a valid code, removing the factor and its recovery codes", async () => {
    const { user, secret } = await enrolled("disable@example.com");
    clock.advance(30);
    expect(await codeOf(disableTotp(deps, meta, { userId: user.id, code: "000000" }))).toBe("INVALID_OTP");
    expect((await totpStatus(deps, user.id)).enabled).toBe(true);
    await disableTotp(deps, meta, { userId: user.id, code: currentCode(secret, clock.now()) });
    expect(await totpStatus(deps, user.id)).toEqual({ enabled: false, pending: false, recoveryCodesLeft: 0 });
    expect(await database.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, user.id))).toEqual([]);
    expect(await codeOf(disableTotp(deps, meta, { userId: user.id, code: "000000" }))).toBe("MFA_NOT_ENABLED");
  });
});

describe("sign-in challenge", () => {
  it("completes once with a right code and is then spent", async () => {
    const { user, secret } = await enrolled("challenge@example.com");
    const { token } = await createMfaChallenge(deps, database.db, user.id);
    expect(await peekMfaChallenge(deps, token)).toBe(true);
    clock.advance(30);
    const code = currentCode(secret, clock.now());
    expect(await completeMfaChallenge(deps, meta, { token, code })).toEqual({ userId: user.id, method: "otp" });
    expect(await peekMfaChallenge(deps, token)).toBe(false);
    expect(await codeOf(completeMfaChallenge(deps, meta, { token, code }))).toBe("MFA_CHALLENGE_EXPIRED");
  });

  it("limits guesses per challenge, expires, and counts wrong codes as failed sign-ins", async () => {
    const { user, secret } = await enrolled("guesses@example.com");
    const { token } = await createMfaChallenge(deps, database.db, user.id);
    for (let i = 0; i < 3; i++) {
      expect(await codeOf(completeMfaChallenge(deps, meta, { token, code: "000000" }))).toBe("INVALID_OTP");
      clock.advance(60); // past the account's throttling delay
    }
    clock.advance(30);
    // Out of guesses: even the right code no longer works on this challenge.
    expect(await codeOf(completeMfaChallenge(deps, meta, { token, code: currentCode(secret, clock.now()) }))).toBe(
      "MFA_CHALLENGE_EXPIRED",
    );
    const failed = await database.db.select().from(auditEvents).where(eq(auditEvents.userId, user.id));
    expect(failed.filter((e) => e.event === "mfa.verified" && e.outcome === "failure")).toHaveLength(3);

    const second = await createMfaChallenge(deps, database.db, user.id);
    clock.advance(deps.config.mfa.challengeTtlSeconds);
    expect(await codeOf(completeMfaChallenge(deps, meta, { token: second.token, code: "000000" }))).toBe(
      "MFA_CHALLENGE_EXPIRED",
    );
    expect(await codeOf(completeMfaChallenge(deps, meta, { token: undefined, code: "000000" }))).toBe(
      "MFA_CHALLENGE_EXPIRED",
    );
  });

  it("wrong codes sent in parallel over many challenges each see the ones before: the delay holds inside the burst", async () => {
    const { user } = await enrolled("otp-burst@example.com");
    const burstMeta = { ip: "192.0.2.77", userAgent: "vitest" };
    const tokens = await Promise.all(
      Array.from({ length: 20 }, async () => (await createMfaChallenge(deps, database.db, user.id)).token),
    );
    const codes = await Promise.all(
      tokens.map((token) => codeOf(completeMfaChallenge(deps, burstMeta, { token, code: "000000" }))),
    );
    // Three free failures and a fourth that asks for a wait: the other 16 are refused before their code is checked.
    expect(codes.filter((c) => c === "INVALID_OTP")).toHaveLength(4);
    expect(codes.filter((c) => c === "LOGIN_THROTTLED")).toHaveLength(16);
    expect((await findAccountThrottle(database.db, secondFactorKey(deps.config, user.id)))?.failures).toBe(4);
  });

  it("wrong codes have their own delays and lock, which a right password does not lift but time does", async () => {
    const { user, secret } = await enrolled("otp-lock@example.com");
    const codes: (string | null)[] = [];
    for (let i = 0; i < 10; i++) {
      const { token } = await createMfaChallenge(deps, database.db, user.id);
      codes.push(await codeOf(completeMfaChallenge(deps, meta, { token, code: "000000" })));
      clock.advance(31); // past the (capped) delay
    }
    expect(codes.slice(0, 9).every((c) => c === "INVALID_OTP")).toBe(true);
    expect(codes[9]).toBe("ACCOUNT_LOCKED");
    // The password's own counter is untouched: the password step still works, the code step does not.
    expect(await checkSignIn(deps, meta, { email: user.email })).toEqual({
      accountLocked: false,
      retryAfterSeconds: 0,
      counted: false,
    });
    const { token } = await createMfaChallenge(deps, database.db, user.id);
    const locked = await completeMfaChallenge(deps, meta, { token, code: currentCode(secret, clock.now()) }).catch(
      (e: AppError) => e,
    );
    expect(locked).toMatchObject({ code: "ACCOUNT_LOCKED", headers: { "retry-after": String(900 - 31) } });
    clock.advance(900);
    const later = await createMfaChallenge(deps, database.db, user.id);
    expect(
      await completeMfaChallenge(deps, meta, { token: later.token, code: currentCode(secret, clock.now()) }),
    ).toEqual({
      userId: user.id,
      method: "otp",
    });
    // Success clears the counter.
    expect(await findAccountThrottle(database.db, secondFactorKey(deps.config, user.id))).toBeNull();
  });
});
