import { auditEvents, passkeyChallenges, passkeys, sessions } from "@tessera/db";
import { desc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, formFor, PASSWORD } from "../accounts/helpers.ts";
import { createUser } from "../oauth/helpers.ts";
import { assert, createCredential, type SoftCredential } from "./authenticator.ts";

/**
 * The WebAuthn ceremonies through the wire (inject) with a software authenticator that signs real bytes: adding a
 * passkey after a fresh password, signing in with it alone, using it as the second step, and the refusals — a lower
 * or equal counter, a replayed or expired challenge, another user's key, no user verification, a foreign origin.
 */
let t: AccountsTestApp;
let origin: string;
const meta = { ip: "127.0.0.1", userAgent: "vitest" };

beforeAll(async () => {
  t = await buildAccountsApp({ RATE_LIMIT_LOGIN: "1000/60", RATE_LIMIT_OTP: "1000/60", RATE_LIMIT_MFA: "1000/60" });
  origin = new URL(t.app.ctx.config.issuer).origin;
});
afterAll(() => t.close());

/** A browser that has loaded a page with a form, so it holds the CSRF cookie; returns the page's token. */
async function csrfOn(b: Browser, page: string): Promise<string> {
  const res = await b.get(page);
  expect(res.statusCode).toBe(200);
  const csrf = formFor(res.body, page === "/login" ? "/login" : "/account/passkeys/")._csrf ?? csrfFrom(res.body);
  return csrf;
}
const csrfFrom = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";

async function signedIn(email: string) {
  const user = await createUser(t.app, { email, password: PASSWORD });
  const b = new Browser(t.app);
  expect((await b.json("POST", "/api/v1/login", { email, password: PASSWORD })).statusCode).toBe(200);
  t.clock.advance(1); // later sessions sort after this one
  return { user, b };
}

/** Adds a passkey through the two registration requests; returns the software key. */
async function addPasskey(b: Browser, flags: { backedUp?: boolean } = {}): Promise<SoftCredential> {
  const _csrf = csrfFrom((await b.get("/account/passkeys")).body);
  const options = await b.json("POST", "/api/v1/passkeys/registration/options", { _csrf, password: PASSWORD });
  expect(options.statusCode).toBe(200);
  const { credential, key } = createCredential(options.json(), origin, flags);
  const done = await b.json("POST", "/api/v1/passkeys/registration", { _csrf, credential, name: "Laptop" });
  expect(done.statusCode).toBe(201);
  return key;
}

async function passkeyRow(key: SoftCredential) {
  const [row] = await t.app.ctx.db.select().from(passkeys).where(eq(passkeys.credentialId, key.id));
  return row!;
}

async function lastAudit(event: string) {
  const [row] = await t.app.ctx.db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.event, event))
    .orderBy(desc(auditEvents.at), desc(auditEvents.id))
    .limit(1);
  return row;
}

async function latestSession(userId: string) {
  const rows = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, userId));
  return rows.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0]!;
}

/** A signed-out browser on the sign-in page asks for options; returns the browser, its token and the challenge. */
async function signInOptions() {
  const b = new Browser(t.app);
  const _csrf = await csrfOn(b, "/login");
  const res = await b.json("POST", "/api/v1/passkeys/sign-in/options", { _csrf });
  expect(res.statusCode).toBe(200);
  return { b, _csrf, options: res.json() as { challenge: string; rpId: string; allowCredentials?: unknown[] } };
}

describe("adding a passkey", () => {
  it("needs a fresh password, the CSRF token and the same browser; stores the key with its counter", async () => {
    const { user, b } = await signedIn("add@example.com");
    const _csrf = csrfFrom((await b.get("/account/passkeys")).body);

    const noCsrf = await b.json("POST", "/api/v1/passkeys/registration/options", { password: PASSWORD });
    expect(noCsrf.statusCode).toBe(403);
    expect(noCsrf.json().error.code).toBe("CSRF_INVALID");
    const noProof = await b.json("POST", "/api/v1/passkeys/registration/options", { _csrf });
    expect(noProof.statusCode).toBe(400);
    expect(noProof.json().error.code).toBe("VALIDATION_FAILED");
    const wrong = await b.json("POST", "/api/v1/passkeys/registration/options", { _csrf, password: "not it at all" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe("INVALID_CREDENTIALS");
    expect(b.cookies.has("tessera_webauthn")).toBe(false);

    const res = await b.json("POST", "/api/v1/passkeys/registration/options", { _csrf, password: PASSWORD });
    expect(res.statusCode).toBe(200);
    const options = res.json();
    expect(options.rp).toEqual({ id: new URL(origin).hostname, name: expect.any(String) });
    expect(options.authenticatorSelection).toMatchObject({ residentKey: "required", userVerification: "required" });
    expect(Buffer.from(options.user.id, "base64url").toString("hex")).toBe(user.id.replace(/-/g, ""));
    const cookie = res.cookies.find((c) => c.name === "tessera_webauthn");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" });

    // Another browser of the same user cannot finish this ceremony (no cookie for it).
    const other = new Browser(t.app);
    expect(
      (await other.json("POST", "/api/v1/login", { email: "add@example.com", password: PASSWORD })).statusCode,
    ).toBe(200);
    const otherCsrf = csrfFrom((await other.get("/account/passkeys")).body);
    const { credential, key } = createCredential(options, origin);
    const stolen = await other.json("POST", "/api/v1/passkeys/registration", { _csrf: otherCsrf, credential });
    expect(stolen.statusCode).toBe(401);
    expect(stolen.json().error.code).toBe("PASSKEY_CHALLENGE_EXPIRED");

    const done = await b.json("POST", "/api/v1/passkeys/registration", { _csrf, credential, name: "Work laptop" });
    expect(done.statusCode).toBe(201);
    expect(done.json().passkey.name).toBe("Work laptop");
    const row = await passkeyRow(key);
    expect(row).toMatchObject({ userId: user.id, counter: 0, transports: ["internal"], backedUp: false });

    // The ceremony was used: the same response again is refused and adds nothing.
    const again = await b.json("POST", "/api/v1/passkeys/registration", { _csrf, credential });
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe("PASSKEY_CHALLENGE_EXPIRED");
    expect(await t.app.ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id))).toHaveLength(1);
  });

  it("refuses a registration without user verification, or made for another origin", async () => {
    const { user, b } = await signedIn("add-refused@example.com");
    const _csrf = csrfFrom((await b.get("/account/passkeys")).body);
    for (const [o, flags] of [
      [origin, { uv: false }],
      ["https://evil.example", {}],
    ] as const) {
      const res = await b.json("POST", "/api/v1/passkeys/registration/options", { _csrf, password: PASSWORD });
      const { credential } = createCredential(res.json(), o, flags);
      const done = await b.json("POST", "/api/v1/passkeys/registration", { _csrf, credential });
      expect(done.statusCode).toBe(401);
      expect(done.json().error.code).toBe("PASSKEY_INVALID");
    }
    expect(await t.app.ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id))).toHaveLength(0);
  });
});

describe("signing in with a passkey alone", () => {
  it("signs in with a discoverable credential, UV required; amr hwk + user + mfa", async () => {
    const { user, b: owner } = await signedIn("alone@example.com");
    const key = await addPasskey(owner);
    const { b, _csrf, options } = await signInOptions();
    expect(options.rpId).toBe(new URL(origin).hostname);
    expect(options.allowCredentials ?? []).toEqual([]);

    const res = await b.json("POST", "/api/v1/passkeys/sign-in", {
      _csrf,
      credential: assert(key, options.challenge, origin),
      return_to: "/account",
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ redirect: "/account" });
    const me = await b.json("GET", "/api/v1/me");
    expect(me.statusCode).toBe(200);
    expect(me.json().user.id).toBe(user.id);
    expect((await latestSession(user.id)).amr).toEqual(["hwk", "user", "mfa"]);
    expect((await passkeyRow(key)).counter).toBe(1);
  });

  it("a synced passkey gives swk", async () => {
    const { b: owner } = await signedIn("synced@example.com");
    const key = await addPasskey(owner, { backedUp: true });
    const { b, _csrf, options } = await signInOptions();
    const credential = assert(key, options.challenge, origin, { backedUp: true });
    expect((await b.json("POST", "/api/v1/passkeys/sign-in", { _csrf, credential })).statusCode).toBe(200);
    const row = await passkeyRow(key);
    expect((await latestSession(row.userId)).amr).toEqual(["swk", "user", "mfa"]);
  });

  it("refuses a lower or equal signature counter, audits it, and changes nothing", async () => {
    const { user, b: owner } = await signedIn("counter@example.com");
    const key = await addPasskey(owner);
    const first = await signInOptions();
    const ok = assert(key, first.options.challenge, origin, { counter: 5 });
    expect(
      (await first.b.json("POST", "/api/v1/passkeys/sign-in", { _csrf: first._csrf, credential: ok })).statusCode,
    ).toBe(200);
    const before = await passkeyRow(key);
    expect(before.counter).toBe(5);
    const sessionsBefore = await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));

    for (const counter of [3, 5]) {
      const { b, _csrf, options } = await signInOptions();
      const res = await b.json("POST", "/api/v1/passkeys/sign-in", {
        _csrf,
        credential: assert(key, options.challenge, origin, { counter }),
      });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe("PASSKEY_COUNTER_MISMATCH");
      expect(res.cookies.find((c) => c.name === "tessera_session")?.value ?? "").toBe("");
      expect((await b.json("GET", "/api/v1/me")).statusCode).toBe(401);
    }
    expect(await passkeyRow(key)).toEqual(before);
    expect(await t.app.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id))).toHaveLength(
      sessionsBefore.length,
    );
    expect(await lastAudit("passkey.assertion_refused")).toMatchObject({
      userId: user.id,
      outcome: "failure",
      details: { reason: "counter", purpose: "sign_in" },
    });
  });

  it("two assertions carrying the same counter, sent in parallel: exactly one signs in", async () => {
    const { user, b: owner } = await signedIn("parallel@example.com");
    const key = await addPasskey(owner);
    const a = await signInOptions();
    const c = await signInOptions();
    const [first, second] = await Promise.all([
      a.b.json("POST", "/api/v1/passkeys/sign-in", {
        _csrf: a._csrf,
        credential: assert(key, a.options.challenge, origin, { counter: 7 }),
      }),
      c.b.json("POST", "/api/v1/passkeys/sign-in", {
        _csrf: c._csrf,
        credential: assert(key, c.options.challenge, origin, { counter: 7 }),
      }),
    ]);
    expect([first.statusCode, second.statusCode].sort()).toEqual([200, 401]);
    expect([first, second].find((r) => r.statusCode === 401)!.json().error.code).toBe("PASSKEY_COUNTER_MISMATCH");
    expect((await passkeyRow(key)).counter).toBe(7);
    expect(user.id).toBe((await passkeyRow(key)).userId);
  });

  it("refuses a replayed challenge, an expired one, and a response signed for another challenge", async () => {
    const { b: owner } = await signedIn("replay@example.com");
    const key = await addPasskey(owner);
    const { b, _csrf, options } = await signInOptions();
    const credential = assert(key, options.challenge, origin);
    const kept = b.cookies.get("tessera_webauthn") ?? "";
    expect((await b.json("POST", "/api/v1/passkeys/sign-in", { _csrf, credential })).statusCode).toBe(200);

    // The same ceremony again (the attacker kept the cookie and signs the same challenge afresh): spent.
    b.cookies.set("tessera_webauthn", kept);
    const replay = await b.json("POST", "/api/v1/passkeys/sign-in", {
      _csrf,
      credential: assert(key, options.challenge, origin),
    });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe("PASSKEY_CHALLENGE_EXPIRED");

    // The captured response sent with a new ceremony: its challenge is not the new one.
    const fresh = await signInOptions();
    const captured = await fresh.b.json("POST", "/api/v1/passkeys/sign-in", { _csrf: fresh._csrf, credential });
    expect(captured.statusCode).toBe(401);
    expect(captured.json().error.code).toBe("PASSKEY_INVALID");

    // Older than five minutes.
    const late = await signInOptions();
    t.clock.advance(301);
    const expired = await late.b.json("POST", "/api/v1/passkeys/sign-in", {
      _csrf: late._csrf,
      credential: assert(key, late.options.challenge, origin),
    });
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.code).toBe("PASSKEY_CHALLENGE_EXPIRED");
  });

  it("refuses no user verification, a foreign origin, an unknown key and a mismatched user handle", async () => {
    const { b: owner } = await signedIn("refusals@example.com");
    const key = await addPasskey(owner);
    const cases = [
      (c: string) => assert(key, c, origin, { uv: false }),
      (c: string) => assert(key, c, "https://evil.example"),
      (c: string) => assert({ ...key, id: "AAAAAAAAAAAAAAAAAAAAAA" }, c, origin),
      (c: string) => assert(key, c, origin, { userHandle: Buffer.alloc(16, 7).toString("base64url") }),
    ];
    const before = await passkeyRow(key);
    for (const make of cases) {
      const { b, _csrf, options } = await signInOptions();
      const res = await b.json("POST", "/api/v1/passkeys/sign-in", { _csrf, credential: make(options.challenge) });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe("PASSKEY_INVALID");
      expect((await b.json("GET", "/api/v1/me")).statusCode).toBe(401);
    }
    expect((await passkeyRow(key)).counter).toBe(before.counter);
  });
});

describe("the passkey as the second step", () => {
  it("after the password: only that user's keys; another user's key refused; then pwd + hwk + mfa", async () => {
    const { user, b: owner } = await signedIn("second@example.com");
    const key = await addPasskey(owner);
    const { b: stranger } = await signedIn("stranger@example.com");
    const strangerKey = await addPasskey(stranger);

    const b = new Browser(t.app);
    const _csrf = await csrfOn(b, "/login");
    const login = await b.post("/login", { _csrf, email: "second@example.com", password: PASSWORD });
    expect(login.statusCode).toBe(303);
    expect(login.headers.location).toBe("/login/passkey");
    expect((await b.get("/login/passkey")).statusCode).toBe(200);
    expect((await b.json("GET", "/api/v1/me")).statusCode).toBe(401);

    const opts = await b.json("POST", "/api/v1/passkeys/second-step/options", { _csrf });
    expect(opts.statusCode).toBe(200);
    const { challenge, allowCredentials } = opts.json();
    expect(allowCredentials.map((c: { id: string }) => c.id)).toEqual([key.id]);
    const foreign = await b.json("POST", "/api/v1/passkeys/second-step", {
      _csrf,
      credential: assert(strangerKey, challenge, origin),
    });
    expect(foreign.statusCode).toBe(401);
    expect(foreign.json().error.code).toBe("PASSKEY_INVALID");
    expect((await b.json("GET", "/api/v1/me")).statusCode).toBe(401);
    expect(await lastAudit("passkey.assertion_refused")).toMatchObject({
      userId: user.id,
      details: { reason: "other_user", purpose: "second_step" },
    });

    const again = await b.json("POST", "/api/v1/passkeys/second-step/options", { _csrf });
    const res = await b.json("POST", "/api/v1/passkeys/second-step", {
      _csrf,
      credential: assert(key, again.json().challenge, origin, { uv: false }),
    });
    expect(res.statusCode).toBe(200);
    const me = await b.json("GET", "/api/v1/me");
    expect(me.json().user.id).toBe(user.id);
    expect((await latestSession(user.id)).amr).toEqual(["pwd", "hwk", "mfa"]);
    // The half-finished sign-in is spent: its cookie cannot start another ceremony.
    const after = await b.json("POST", "/api/v1/passkeys/second-step/options", { _csrf });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe("MFA_CHALLENGE_EXPIRED");
  });
});

describe("renaming and removing", () => {
  it("needs the password; another user's passkey is not found; nothing changes on a refusal", async () => {
    const { user, b } = await signedIn("manage@example.com");
    const key = await addPasskey(b);
    const row = await passkeyRow(key);
    const { b: other } = await signedIn("manage-other@example.com");
    const _csrf = csrfFrom((await b.get("/account/passkeys")).body);

    const wrong = await b.post(`/account/passkeys/${row.id}/rename`, { _csrf, name: "Phone", password: "nope nope" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("Your current password is not correct.");
    expect((await passkeyRow(key)).name).toBe("Laptop");

    const renamed = await b.post(`/account/passkeys/${row.id}/rename`, { _csrf, name: "Phone", password: PASSWORD });
    expect(renamed.statusCode).toBe(303);
    expect(renamed.headers.location).toBe("/account/passkeys?notice=renamed");
    expect((await passkeyRow(key)).name).toBe("Phone");

    const otherCsrf = csrfFrom((await other.get("/account/passkeys")).body);
    const foreign = await other.post(`/account/passkeys/${row.id}/remove`, { _csrf: otherCsrf, password: PASSWORD });
    expect(foreign.statusCode).toBe(404);
    expect(await passkeyRow(key)).toBeTruthy();

    const removed = await b.post(`/account/passkeys/${row.id}/remove`, { _csrf, password: PASSWORD });
    expect(removed.statusCode).toBe(303);
    expect(await t.app.ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id))).toHaveLength(0);
    expect(await lastAudit("passkey.removed")).toMatchObject({ userId: user.id, outcome: "success" });
  });
});

describe("a code instead of the password", () => {
  it("a code from the authenticator app works once; a wrong one is INVALID_OTP and changes nothing", async () => {
    const { user, b } = await signedIn("code-proof@example.com");
    const key = await addPasskey(b);
    const row = await passkeyRow(key);
    const { secret } = await beginTotpEnrolment(t.app.ctx, meta, user);
    await confirmTotpEnrolment(t.app.ctx, meta, { userId: user.id, code: currentCode(secret, t.clock.now()) });
    t.clock.advance(30);
    const _csrf = csrfFrom((await b.get("/account/passkeys")).body);

    const wrong = await b.post(`/account/passkeys/${row.id}/rename`, { _csrf, name: "Phone", code: "000000" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("That code is not valid.");
    expect((await passkeyRow(key)).name).toBe("Laptop");

    const code = currentCode(secret, t.clock.now());
    const ok = await b.post(`/account/passkeys/${row.id}/rename`, { _csrf, name: "Phone", code });
    expect(ok.statusCode).toBe(303);
    expect((await passkeyRow(key)).name).toBe("Phone");
    // The same code again is a replay.
    const replay = await b.post(`/account/passkeys/${row.id}/remove`, { _csrf, code });
    expect(replay.statusCode).toBe(401);
    expect(await passkeyRow(key)).toBeTruthy();
  });
});

describe("a deleted account", () => {
  it("its passkeys are deleted with it and sign in to nothing", async () => {
    const { user, b } = await signedIn("deleted@example.com");
    const key = await addPasskey(b);
    const gone = await b.submit("/account", { currentPassword: PASSWORD }, "/account/delete");
    expect(gone.statusCode).toBe(303);
    expect(await t.app.ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id))).toHaveLength(0);
    const { b: other, _csrf, options } = await signInOptions();
    const res = await other.json("POST", "/api/v1/passkeys/sign-in", {
      _csrf,
      credential: assert(key, options.challenge, origin),
    });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe("PASSKEY_INVALID");
  });
});

describe("challenge storage", () => {
  it("stores only the hash of the ceremony cookie", async () => {
    const { b } = await signInOptions();
    const value = b.cookies.get("tessera_webauthn");
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = await t.app.ctx.db.select().from(passkeyChallenges);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.tokenHash === value || r.challenge === value)).toBe(false);
  });
});
