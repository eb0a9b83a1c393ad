import { createHmac, randomBytes } from "node:crypto";
import { generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { AccessTokenCodec, MemoryRevokedSessionStore, safeReturnTo } from "../src/index.ts";

const secret = randomBytes(32);
const codec = () => new AccessTokenCodec({ secret, audience: "app" });
const now = 1_800_000_000;
const claims = { sub: "u1", sid: "s1", sxp: now + 86400, email: "ada@example.com", name: "Ada" };
const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("AccessTokenCodec", () => {
  it("signs with the exact header {alg:HS256,typ:JWT} and verifies its own tokens", () => {
    const c = codec();
    const jwt = c.sign(claims, now, 300);
    expect(jwt.split(".")[0]).toBe(enc({ alg: "HS256", typ: "JWT" }));
    const result = c.verify(jwt, now + 1);
    expect(result.status).toBe("valid");
    if (result.status !== "valid") return;
    expect(result.user).toMatchObject({ id: "u1", sessionId: "s1", email: "ada@example.com", expiresAt: now + 300 });
    expect(Object.isFrozen(result.user)).toBe(true);
    expect(Object.isFrozen(result.claims)).toBe(true);
  });

  it("never signs beyond the Tessera session's expiry", () => {
    const c = codec();
    const result = c.verify(c.sign({ ...claims, sxp: now + 60 }, now, 300), now);
    expect(result.status === "valid" && result.claims.exp).toBe(now + 60);
  });

  it("reports an expired token as expired (with its verified claims), also once it was cached", () => {
    const c = codec();
    const jwt = c.sign(claims, now, 300);
    expect(c.verify(jwt, now).status).toBe("valid");
    const expired = c.verify(jwt, now + 300);
    expect(expired.status).toBe("expired");
    expect(expired.status === "expired" && expired.claims.sid).toBe("s1");
    expect(codec().verify(jwt, now + 301).status).toBe("expired");
  });

  it("rejects a tampered payload (e.g. another sub) even when the genuine token is cached", () => {
    const c = codec();
    const jwt = c.sign(claims, now, 300);
    c.verify(jwt, now);
    const [h, , s] = jwt.split(".");
    const forged = `${h}.${enc({ ...claims, sub: "admin", aud: "app", iat: now, exp: now + 300 })}.${s}`;
    expect(c.verify(forged, now)).toEqual({ status: "invalid" });
    const flipped = jwt.slice(0, -5) + (jwt.at(-5) === "A" ? "B" : "A") + jwt.slice(-4);
    expect(c.verify(flipped, now)).toEqual({ status: "invalid" });
  });

  it("rejects a token signed with another secret", () => {
    const other = new AccessTokenCodec({ secret: randomBytes(32), audience: "app" });
    expect(codec().verify(other.sign(claims, now, 300), now)).toEqual({ status: "invalid" });
  });

  it("rejects a token for another audience (another app sharing the secret)", () => {
    const other = new AccessTokenCodec({ secret, audience: "other-app" });
    expect(codec().verify(other.sign(claims, now, 300), now)).toEqual({ status: "invalid" });
  });

  it("rejects wrong algorithms: none, HS512, RS256, and a re-ordered or extended header", async () => {
    const payload = { ...claims, aud: "app", iat: now, exp: now + 300 };
    const c = codec();
    expect(c.verify(`${enc({ alg: "none", typ: "JWT" })}.${enc(payload)}.`, now)).toEqual({ status: "invalid" });
    const hs512 = await new SignJWT(payload).setProtectedHeader({ alg: "HS512", typ: "JWT" }).sign(secret);
    expect(c.verify(hs512, now)).toEqual({ status: "invalid" });
    const { privateKey } = await generateKeyPair("RS256");
    const rs256 = await new SignJWT(payload).setProtectedHeader({ alg: "RS256", typ: "JWT" }).sign(privateKey);
    expect(c.verify(rs256, now)).toEqual({ status: "invalid" });
    // Correct HMAC over a different header encoding: still refused (only the exact header bytes are accepted).
    for (const header of [{ typ: "JWT", alg: "HS256" }, { alg: "HS256", typ: "JWT", kid: "x" }, { alg: "HS256" }]) {
      const input = `${enc(header)}.${enc(payload)}`;
      const mac = createHmac("sha256", secret).update(input).digest("base64url");
      expect(c.verify(`${input}.${mac}`, now)).toEqual({ status: "invalid" });
    }
  });

  it("rejects a token that is not valid yet: nbf or iat in the future (beyond 60 s of clock skew)", () => {
    const c = codec();
    const mint = (extra: Record<string, unknown>) => {
      const input = `${enc({ alg: "HS256", typ: "JWT" })}.${enc({ ...claims, aud: "app", iat: now, exp: now + 300, ...extra })}`;
      return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
    };
    expect(c.verify(mint({}), now).status).toBe("valid");
    expect(c.verify(mint({ nbf: now + 30 }), now).status).toBe("valid"); // within the skew allowance
    expect(c.verify(mint({ nbf: now + 120 }), now)).toEqual({ status: "invalid" });
    expect(c.verify(mint({ nbf: "soon" }), now)).toEqual({ status: "invalid" });
    expect(c.verify(mint({ iat: now + 120 }), now)).toEqual({ status: "invalid" });
  });

  it("accepts only the canonical encoding of the signature (no second spelling of one token)", () => {
    const c = codec();
    const jwt = c.sign(claims, now, 300);
    // 43 base64url characters carry 258 bits: the last one's two low bits are padding a lenient decoder ignores.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(jwt.at(-1) ?? "");
    const twin = jwt.slice(0, -1) + alphabet[last ^ 1];
    expect(Buffer.from(twin.split(".")[2] ?? "", "base64url")).toEqual(
      Buffer.from(jwt.split(".")[2] ?? "", "base64url"),
    );
    expect(c.verify(twin, now)).toEqual({ status: "invalid" });
    expect(c.verify(`${jwt}=`, now)).toEqual({ status: "invalid" });
    expect(c.verify(jwt, now).status).toBe("valid");
  });

  it("rejects malformed input without throwing", () => {
    const c = codec();
    for (const junk of ["", "a", "a.b", "a.b.c", "x".repeat(5000), `${enc({ alg: "HS256", typ: "JWT" })}..`]) {
      expect(c.verify(junk, now)).toEqual({ status: "invalid" });
    }
  });

  it("keeps a bounded cache of verified tokens", () => {
    const c = new AccessTokenCodec({ secret, audience: "app", cacheSize: 3 });
    for (let i = 0; i < 10; i++) c.verify(c.sign({ ...claims, sub: `u${i}` }, now, 300), now);
    expect(c.cacheSize).toBe(3);
  });

  it("verification is cheap: 100k cached checks well under a second", () => {
    const c = codec();
    const jwt = c.sign(claims, now, 300);
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) c.verify(jwt, now);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("MemoryRevokedSessionStore", () => {
  it("remembers a session id until its TTL, bounded in size", () => {
    let t = 0;
    const store = new MemoryRevokedSessionStore({ maxEntries: 2, now: () => t });
    store.add("a", 10);
    expect(store.has("a")).toBe(true);
    expect(store.has("b")).toBe(false);
    t = 10_001;
    expect(store.has("a")).toBe(false);
    store.add("b", 10);
    store.add("c", 10);
    store.add("d", 10);
    expect(store.size).toBe(2);
    expect(store.has("d")).toBe(true);
  });
});

describe("safeReturnTo (open-redirect defence)", () => {
  it.each([
    ["/cart", "/cart"],
    ["/orders?id=3#top", "/orders?id=3#top"],
    ["/a/../b", "/b"],
    ["/%2F%2Fevil.example", "/%2F%2Fevil.example"],
  ])("keeps the same-origin path %s", (input, expected) => {
    expect(safeReturnTo(input)).toBe(expected);
  });
  it.each([
    "https://evil.example/",
    "http:evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
    "/..//evil.example",
    "/x".repeat(2000),
  ])("refuses %j", (input) => {
    expect(safeReturnTo(input, "/home")).toBe("/home");
  });
  it("refuses non-strings", () => {
    expect(safeReturnTo(["/a"])).toBe("/");
    expect(safeReturnTo(undefined)).toBe("/");
  });
});
