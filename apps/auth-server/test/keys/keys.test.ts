import { createDatabase, signingKeys } from "@tessera/db";
import { createTestDatabase, usingPostgres } from "@tessera/db/testing";
import { isNull } from "drizzle-orm";
import { type CryptoKey, exportSPKI, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config/index.ts";
import { TestClock } from "../../src/libraries/clock.ts";
import { decrypt } from "../../src/libraries/crypto.ts";
import {
  ensureSigningKey,
  keyPublishWindowSeconds,
  publicJwks,
  rotateSigningKey,
  signJwt,
  verifyJwt,
} from "../../src/libraries/keys/index.ts";
import { loadedKeys } from "../../src/libraries/keys/store.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

let t: TestApp;
const ISSUER = "http://localhost:3000";

beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("signing keys at rest", () => {
  it("creates one key per algorithm on start (RS256 the default), private keys only as ciphertext bound to the kid", async () => {
    const rows = await t.app.ctx.db.select().from(signingKeys);
    // Every supported algorithm has its key from the first start (#13), so ES256/EdDSA verifiers find theirs.
    expect(rows.map((r) => r.alg).sort()).toEqual(["ES256", "EdDSA", "RS256"]);
    const row = rows.find((r) => r.alg === "RS256");
    if (!row) throw new Error("no key");
    expect(row).toMatchObject({ alg: "RS256", retiredAt: null });
    expect(row.activatedAt).not.toBeNull();
    const publicJwk = row.publicJwk as JWK;
    expect(publicJwk).toMatchObject({ kty: "RSA", kid: row.kid, alg: "RS256", use: "sig" });
    expect(publicJwk.d).toBeUndefined();

    const privateJwk = JSON.parse(
      decrypt(t.app.ctx.config.masterKey, row.privateKeyEncrypted, `tessera:signing-key:${row.kid}`),
    );
    expect(typeof privateJwk.d).toBe("string");
    // The stored row holds none of the private members in clear.
    for (const member of ["d", "p", "q", "dp", "dq", "qi"]) {
      expect(JSON.stringify(row)).not.toContain(privateJwk[member]);
    }
    expect(row.privateKeyEncrypted).toMatch(/^v1\./);
    // Bound to the kid: moving the ciphertext to another row does not decrypt.
    expect(() => decrypt(t.app.ctx.config.masterKey, row.privateKeyEncrypted, "tessera:signing-key:other")).toThrow();
    // And to the master key.
    expect(() => decrypt(Buffer.alloc(32, 7), row.privateKeyEncrypted, `tessera:signing-key:${row.kid}`)).toThrow();
  });

  it("concurrent first starts create exactly one active key", async () => {
    const database = await createTestDatabase();
    const clock = new TestClock();
    const config = testConfig({ SIGNING_ALG: "ES256" });
    // On PostgreSQL each "instance" gets its own connection pool, as separate servers would.
    const extra = usingPostgres()
      ? await Promise.all(
          [1, 2, 3].map(() => createDatabase({ url: (database as { url?: string }).url, maxConnections: 2 })),
        )
      : [];
    try {
      const dbs = [database.db, ...extra.map((e) => e.db)];
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          ensureSigningKey({ db: dbs[i % dbs.length] ?? database.db, clock, config }),
        ),
      );
      expect(new Set(results.map((r) => r.kid)).size).toBe(1);
      const active = await database.db.select().from(signingKeys).where(isNull(signingKeys.retiredAt));
      expect(active).toHaveLength(1);
    } finally {
      await Promise.all(extra.map((e) => e.close()));
      await database.close();
    }
  });
});

describe("discovery and JWKS", () => {
  it("publishes the OpenID Provider metadata, cacheable", async () => {
    const res = await t.app.inject({ method: "GET", url: "/.well-known/openid-configuration" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("public, max-age=3600");
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    // toMatchObject: other areas add their own metadata (e.g. acr_values_supported) to the same document.
    expect(res.json()).toMatchObject({
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/authorize`,
      token_endpoint: `${ISSUER}/token`,
      userinfo_endpoint: `${ISSUER}/userinfo`,
      jwks_uri: `${ISSUER}/jwks`,
      revocation_endpoint: `${ISSUER}/revoke`,
      introspection_endpoint: `${ISSUER}/introspect`,
      end_session_endpoint: `${ISSUER}/logout`,
      scopes_supported: ["openid", "profile", "email", "offline_access", "roles"],
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      grant_types_supported: [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
      ],
      device_authorization_endpoint: `${ISSUER}/device_authorization`,
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["RS256", "ES256", "EdDSA"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
      revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
      introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      code_challenge_methods_supported: ["S256"],
      prompt_values_supported: ["none", "login", "consent"],
      claims_supported: expect.arrayContaining([
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "sid",
        "email",
      ]),
      claim_types_supported: ["normal"],
      claims_parameter_supported: false,
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
      require_request_uri_registration: false,
      frontchannel_logout_supported: false,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      authorization_response_iss_parameter_supported: true,
    });
  });

  it("builds the metadata from the configured issuer, never from the Host header", async () => {
    const res = await t.app.inject({
      method: "GET",
      url: "/.well-known/openid-configuration",
      headers: { host: "evil.example", "x-forwarded-host": "evil.example" },
    });
    expect(res.body).not.toContain("evil.example");
  });

  it("publishes only public key members, with a short public cache", async () => {
    const res = await t.app.inject({ method: "GET", url: "/jwks" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("public, max-age=60");
    expect(res.headers["content-type"]).toBe("application/jwk-set+json; charset=utf-8");
    const { keys } = res.json();
    expect(keys).toHaveLength(3);
    const members = (alg: string) => Object.keys(keys.find((k: { alg: string }) => k.alg === alg)).sort();
    expect(members("RS256")).toEqual(["alg", "e", "kid", "kty", "n", "use"]);
    expect(members("ES256")).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
    expect(members("EdDSA")).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
  });

  it("answers wrong methods on discovery without a 500", async () => {
    for (const url of ["/jwks", "/.well-known/openid-configuration"]) {
      const res = await t.app.inject({ method: "POST", url, payload: { a: 1 } });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe("NOT_FOUND");
    }
  });
});

describe("rotation and the publication window", () => {
  it("keeps a retired key published and accepted until its tokens have expired, then drops it", async () => {
    const database = await createTestDatabase();
    const clock = new TestClock();
    const config = testConfig();
    const deps = { db: database.db, clock, config };
    try {
      const oldToken = await signJwt(deps, { sub: "u1", aud: "c1" }, { expiresInSeconds: 300 });
      const oldKid = (await publicJwks(deps)).keys[0]?.kid;
      const { active, retired } = await rotateSigningKey(deps);
      expect(retired).toEqual([oldKid]);

      const newToken = await signJwt(deps, { sub: "u1", aud: "c1" }, { expiresInSeconds: 300 });
      expect(JSON.parse(Buffer.from(newToken.split(".")[0] ?? "", "base64url").toString()).kid).toBe(active.kid);
      expect((await publicJwks(deps)).keys.map((k) => k.kid)).toEqual([active.kid, oldKid]);
      await expect(verifyJwt(deps, oldToken, { audience: "c1" })).resolves.toMatchObject({ sub: "u1" });

      // One second before the window closes the old key is still there; at the window it is gone.
      const window = keyPublishWindowSeconds(config);
      expect(window).toBe(360);
      clock.advance(window - 1);
      expect((await publicJwks(deps)).keys.map((k) => k.kid)).toEqual([active.kid, oldKid]);
      clock.advance(1);
      expect((await publicJwks(deps)).keys.map((k) => k.kid)).toEqual([active.kid]);
      await expect(verifyJwt(deps, oldToken, { audience: "c1", allowExpired: true })).rejects.toMatchObject({
        code: "TOKEN_INVALID",
        message: "The token is invalid: unknown key.",
      });
    } finally {
      await database.close();
    }
  });

  it("signs and publishes ES256 and EdDSA keys alongside the default", async () => {
    for (const alg of ["ES256", "EdDSA"] as const) {
      const token = await signJwt(t.app.ctx, { sub: "u" }, { alg, expiresInSeconds: 60 });
      const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString());
      expect(header).toMatchObject({ alg, typ: "JWT" });
      await expect(verifyJwt(t.app.ctx, token)).resolves.toMatchObject({ sub: "u", iss: ISSUER });
    }
    const { keys } = (await t.app.inject({ method: "GET", url: "/jwks" })).json();
    expect(keys.map((k: JWK) => k.alg).sort()).toEqual(["ES256", "EdDSA", "RS256"]);
    for (const k of keys) expect(k.d).toBeUndefined();
  });

  it("refuses lifetimes longer than the publication window covers (a programming error)", async () => {
    await expect(signJwt(t.app.ctx, {}, { expiresInSeconds: 301 })).rejects.toThrow(TypeError);
    await expect(signJwt(t.app.ctx, {}, { expiresInSeconds: 0 })).rejects.toThrow(TypeError);
  });
});

describe("several instances", () => {
  it.skipIf(!usingPostgres())("verifies a token signed with a key another instance just rotated in", async () => {
    const database = await createTestDatabase();
    const other = await createDatabase({ url: (database as { url?: string }).url, maxConnections: 2 });
    try {
      const clock = new TestClock();
      const config = testConfig();
      const a = { db: database.db, clock, config };
      const b = { db: other.db, clock, config };
      await signJwt(a, { sub: "warm" }, { expiresInSeconds: 60 }); // instance A has loaded (and cached) its keys
      const { active } = await rotateSigningKey(b);
      const fromB = await signJwt(b, { sub: "u" }, { expiresInSeconds: 60 });
      expect(JSON.parse(Buffer.from(fromB.split(".")[0] ?? "", "base64url").toString()).kid).toBe(active.kid);
      // Within the miss-refresh interval an unknown kid is not looked up again; just after it, it is.
      await new Promise((r) => setTimeout(r, 1100));
      await expect(verifyJwt(a, fromB)).resolves.toMatchObject({ sub: "u" });
    } finally {
      await other.close();
      await database.close();
    }
  });
});

describe("verifyJwt", () => {
  async function good(claims: Record<string, unknown> = {}, typ?: string) {
    return signJwt(
      t.app.ctx,
      { sub: "user-1", aud: "client-1", ...claims },
      { expiresInSeconds: 300, ...(typ ? { typ } : {}) },
    );
  }
  async function activeKid() {
    const { keys } = await publicJwks(t.app.ctx);
    return keys.find((k) => k.alg === "RS256")?.kid as string;
  }
  const rejects = (token: string, options: Parameters<typeof verifyJwt>[2], code: string, message: string) =>
    expect(verifyJwt(t.app.ctx, token, options)).rejects.toMatchObject({ code, message });

  it("accepts a good token and sets iss, iat, exp, kid and typ", async () => {
    const token = await good();
    const payload = await verifyJwt(t.app.ctx, token, { audience: "client-1" });
    const now = Math.floor(t.clock.now().getTime() / 1000);
    expect(payload).toEqual({ sub: "user-1", aud: "client-1", iss: ISSUER, iat: now, exp: now + 300 });
    const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString());
    expect(header).toEqual({ alg: "RS256", kid: await activeKid(), typ: "JWT" });
  });

  it("rejects alg none", async () => {
    const kid = await activeKid();
    const now = Math.floor(t.clock.now().getTime() / 1000);
    const body = b64({ sub: "user-1", aud: "client-1", iss: ISSUER, iat: now, exp: now + 60 });
    for (const alg of ["none", "None", "NONE"]) {
      await rejects(
        `${b64({ alg, kid, typ: "JWT" })}.${body}.`,
        {},
        "TOKEN_INVALID",
        "The token is invalid: unsupported algorithm.",
      );
    }
  });

  it("rejects HS256 signed with the public key (RS/HS confusion)", async () => {
    const { keys } = await publicJwks(t.app.ctx);
    const jwk = keys.find((k) => k.alg === "RS256") as JWK;
    const pem = await exportSPKI((await importJWK(jwk, "RS256")) as CryptoKey);
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(jwk)), Buffer.from(jwk.n ?? "")]) {
      const forged = await new SignJWT({ sub: "admin", aud: "client-1" })
        .setProtectedHeader({ alg: "HS256", kid: jwk.kid as string, typ: "JWT" })
        .setIssuer(ISSUER)
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(secret);
      await rejects(forged, {}, "TOKEN_INVALID", "The token is invalid: unsupported algorithm.");
    }
  });

  it("rejects a token signed by a foreign key under Tessera's kid, or a header alg that is not the key's", async () => {
    const kid = await activeKid();
    const foreign = await generateKeyPair("RS256");
    const forged = await new SignJWT({ sub: "admin", aud: "client-1" })
      .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
      .setIssuer(ISSUER)
      .setIssuedAt(t.clock.now())
      .setExpirationTime(Math.floor(t.clock.now().getTime() / 1000) + 60)
      .sign(foreign.privateKey);
    await rejects(forged, {}, "TOKEN_INVALID", "The token is invalid: signature check failed.");

    const es = await generateKeyPair("ES256");
    const mismatched = await new SignJWT({ sub: "admin" })
      .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(es.privateKey);
    await rejects(mismatched, {}, "TOKEN_INVALID", "The token is invalid: unknown key.");
  });

  it("rejects a tampered payload", async () => {
    const [h, , s] = (await good()).split(".");
    const now = Math.floor(t.clock.now().getTime() / 1000);
    const tampered = `${h}.${b64({ sub: "admin", aud: "client-1", iss: ISSUER, iat: now, exp: now + 300 })}.${s}`;
    await rejects(tampered, {}, "TOKEN_INVALID", "The token is invalid: signature check failed.");
  });

  it("accepts only the exact base64url signature it issued (no padding, no stray characters)", async () => {
    const token = await good();
    for (const altered of [`${token}=`, `${token}==`, `${token.slice(0, -2)}!${token.slice(-2)}`, `${token} `]) {
      await rejects(altered, {}, "TOKEN_INVALID", "The token is invalid: signature check failed.");
    }
  });

  it("rejects a wrong iss, aud or typ", async () => {
    // Signed with Tessera's own key but for another issuer (same database and master key, other ISSUER).
    const otherIssuer = { ...t.app.ctx, config: testConfig({ ISSUER: "https://other.example" }) };
    await rejects(
      await signJwt(otherIssuer, { sub: "user-1" }, { expiresInSeconds: 60 }),
      {},
      "TOKEN_INVALID",
      "The token is invalid: iss check failed.",
    );
    await rejects(await good(), { audience: "client-2" }, "TOKEN_INVALID", "The token is invalid: aud check failed.");
    await rejects(
      await good({ aud: undefined }),
      { audience: "client-1" },
      "TOKEN_INVALID",
      "The token is invalid: aud check failed.",
    );
    // A logout token is not an ID token, and the other way round.
    await rejects(await good({}, "logout+jwt"), {}, "TOKEN_INVALID", "The token is invalid: typ check failed.");
    await rejects(await good(), { typ: "logout+jwt" }, "TOKEN_INVALID", "The token is invalid: typ check failed.");
    await expect(verifyJwt(t.app.ctx, await good({}, "logout+jwt"), { typ: "logout+jwt" })).resolves.toMatchObject({
      sub: "user-1",
    });
  });

  it("rejects an expired token (TOKEN_EXPIRED) unless allowExpired, and a not-yet-valid one", async () => {
    const token = await good();
    t.clock.advance(300 + 5);
    try {
      await rejects(token, {}, "TOKEN_EXPIRED", "The token has expired.");
      await expect(verifyJwt(t.app.ctx, token, { allowExpired: true, audience: "client-1" })).resolves.toMatchObject({
        sub: "user-1",
      });
      // allowExpired still checks everything else.
      await rejects(
        token,
        { allowExpired: true, audience: "other" },
        "TOKEN_INVALID",
        "The token is invalid: aud check failed.",
      );
    } finally {
      t.clock.advance(-305);
    }
    const future = Math.floor(t.clock.now().getTime() / 1000) + 120;
    await rejects(await good({ nbf: future }), {}, "TOKEN_INVALID", "The token is invalid: nbf check failed.");
  });

  it("rejects malformed input without throwing anything but TOKEN_INVALID", async () => {
    const kid = await activeKid();
    const inputs = [
      "",
      "a.b",
      "a.b.c",
      "....",
      "x".repeat(20_000),
      `${b64({ alg: "RS256" })}.${b64({})}.sig`,
      `${b64({ alg: "RS256", kid: "unknown" })}.${b64({})}.sig`,
      `${b64({ alg: "RS256", kid })}.not-json.sig`,
      `${b64({ alg: "RS256", kid, crit: ["exp"] })}.${b64({})}.sig`,
      42 as unknown as string,
    ];
    for (const input of inputs) {
      await expect(verifyJwt(t.app.ctx, input)).rejects.toMatchObject({ code: "TOKEN_INVALID" });
    }
  });
});

/**
 * verifyJwt keeps tokens it verified (jwt.ts, VerifiedToken): a second presentation of the same string must still
 * fail every check that can change — expiry, the key's publication, the expected typ and aud — and never fail one
 * that it passed.
 */
describe("verifyJwt's cache of verified tokens", () => {
  async function fresh() {
    const database = await createTestDatabase();
    const clock = new TestClock();
    return { database, deps: { db: database.db, clock, config: testConfig() } };
  }

  it("still expires a token it has seen, and still hands it to allowExpired", async () => {
    const { database, deps } = await fresh();
    try {
      const token = await signJwt(deps, { sub: "u1", aud: "c1" }, { typ: "at+jwt", expiresInSeconds: 60 });
      for (let i = 0; i < 2; i++) {
        await expect(verifyJwt(deps, token, { typ: "at+jwt" })).resolves.toMatchObject({ sub: "u1", aud: "c1" });
      }
      deps.clock.advance(60 + 5);
      await expect(verifyJwt(deps, token, { typ: "at+jwt" })).rejects.toMatchObject({ code: "TOKEN_EXPIRED" });
      await expect(verifyJwt(deps, token, { typ: "at+jwt", allowExpired: true })).resolves.toMatchObject({
        sub: "u1",
      });
    } finally {
      await database.close();
    }
  });

  it("refuses a token it has seen once its key is gone", async () => {
    const { database, deps } = await fresh();
    try {
      const token = await signJwt(deps, { sub: "u1" }, { typ: "at+jwt", expiresInSeconds: 60 });
      await expect(verifyJwt(deps, token, { typ: "at+jwt" })).resolves.toMatchObject({ sub: "u1" });
      // The key withdrawn at once (as an operator would after a compromise), and the instance's key cache reloaded.
      await database.db.delete(signingKeys);
      await loadedKeys(deps, true);
      await expect(verifyJwt(deps, token, { typ: "at+jwt" })).rejects.toMatchObject({
        code: "TOKEN_INVALID",
        message: "The token is invalid: unknown key.",
      });
    } finally {
      await database.close();
    }
  });

  it("checks typ, aud and the issuer again when the expectation differs, and gives each caller its own copy", async () => {
    const { database, deps } = await fresh();
    try {
      const token = await signJwt(deps, { sub: "u1", aud: "c1" }, { typ: "at+jwt", expiresInSeconds: 60 });
      for (let i = 0; i < 2; i++) {
        const payload = await verifyJwt(deps, token, { typ: "at+jwt", audience: "c1" });
        payload.sub = "changed by a caller";
      }
      await expect(verifyJwt(deps, token, { typ: "at+jwt", audience: "c1" })).resolves.toMatchObject({ sub: "u1" });
      await expect(verifyJwt(deps, token, { typ: "at+jwt", audience: "c2" })).rejects.toMatchObject({
        message: "The token is invalid: aud check failed.",
      });
      await expect(verifyJwt(deps, token)).rejects.toMatchObject({
        message: "The token is invalid: typ check failed.",
      });
      const otherIssuer = { ...deps, config: testConfig({ ISSUER: "https://other.example" }) };
      await expect(verifyJwt(otherIssuer, token, { typ: "at+jwt", audience: "c1" })).rejects.toMatchObject({
        message: "The token is invalid: iss check failed.",
      });
    } finally {
      await database.close();
    }
  });
});
