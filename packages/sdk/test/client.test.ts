import { createHash, randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type AuthResult,
  authInputFrom,
  createTessera,
  TesseraConfigError,
  TesseraError,
  type TesseraOptions,
} from "../src/index.ts";
import { cookieHeader, type StubIssuer, startStubIssuer } from "./stub-issuer.ts";

let clock = Date.UTC(2026, 10, 21, 12, 0, 0);
const now = () => clock;
let stub: StubIssuer;
const appSecret = randomBytes(32);

beforeAll(async () => {
  stub = await startStubIssuer(now);
});
afterAll(async () => stub.close());
beforeEach(() => {
  stub.refreshMode = "ok";
  stub.tokenDelayMs = 0;
  stub.tokenRequests.length = 0;
  stub.idTokenClaims = {};
});

function options(extra: Partial<TesseraOptions> = {}): TesseraOptions {
  return {
    issuer: stub.issuer,
    clientId: stub.clientId,
    clientSecret: stub.clientSecret,
    appSecret,
    redirectUri: "http://127.0.0.1:4001/auth/callback",
    postLogoutRedirectUri: "http://127.0.0.1:4001/",
    cookies: { secure: false, prefix: "web" },
    now,
    ...extra,
  };
}

/** The answer when `authenticate` needed no I/O, undefined when it returned a promise (the asynchronous path). */
function syncResult(result: AuthResult | Promise<AuthResult>): AuthResult | undefined {
  return result instanceof Promise ? undefined : result;
}

/** Runs login + authorize + callback; returns the cookie jar a browser would hold. */
async function signIn(tessera = createTessera(options()), returnTo = "/cart") {
  const login = await tessera.login({ returnTo });
  const jar = new Map<string, string>();
  const cookies = cookieHeader(login.setCookies, jar);
  const query = stub.authorize(login.url);
  const result = await tessera.callback({ url: `/auth/callback?${query}`, cookieHeader: cookies });
  cookieHeader(result.setCookies, jar);
  return { tessera, jar, result, header: () => cookieHeader([], jar) };
}

describe("configuration", () => {
  it("refuses an app secret under 32 bytes at start-up with a clear message", () => {
    expect(() => createTessera(options({ appSecret: "x".repeat(31) }))).toThrow(TesseraConfigError);
    expect(() => createTessera(options({ appSecret: "x".repeat(31) }))).toThrow(/appSecret: must be at least 32 bytes/);
  });
  it("requires an explicit cookies.secure", () => {
    expect(() => createTessera(options({ cookies: {} as TesseraOptions["cookies"] }))).toThrow(/cookies.secure/);
  });
  it("uses __Host- names when secure, and __Secure- for a refresh cookie with a narrower path", () => {
    const secure = createTessera(options({ redirectUri: "https://shop.example/cb", cookies: { secure: true } }));
    expect(secure.cookieNames).toEqual({
      access: "__Host-tsdk-at",
      refresh: "__Host-tsdk-rt",
      idToken: "__Host-tsdk-idt",
      transaction: "__Host-tsdk-tx",
    });
    const narrow = createTessera(
      options({ redirectUri: "https://shop.example/cb", cookies: { secure: true, refreshPath: "/app" } }),
    );
    expect(narrow.cookieNames.refresh).toBe("__Secure-tsdk-rt");
  });
  it("takes the app's origin from redirectUri unless origins are given, and refuses anything but an origin", () => {
    expect(createTessera(options()).isAllowedOrigin("http://127.0.0.1:4001")).toBe(true);
    expect(createTessera(options()).isAllowedOrigin("http://127.0.0.1:4002")).toBe(false);
    expect(createTessera(options()).isAllowedOrigin(undefined)).toBe(true);
    const two = createTessera(options({ origins: ["https://shop.example", "https://www.shop.example"] }));
    expect(two.isAllowedOrigin("https://www.shop.example")).toBe(true);
    expect(two.isAllowedOrigin("http://127.0.0.1:4001")).toBe(false);
    expect(() => createTessera(options({ origins: ["https://shop.example/"] }))).toThrow(/origins\[0\]/);
    expect(() => createTessera(options({ origins: [] }))).toThrow(/origins/);
  });
  it("refuses extraClaims that would overwrite the SDK's own claims (whose, which session, how long)", () => {
    for (const claim of ["sub", "sid", "sxp", "exp", "rth"]) {
      expect(() => createTessera(options({ extraClaims: ["roles", claim] }))).toThrow(/extraClaims/);
    }
    expect(createTessera(options({ extraClaims: ["roles", "tenant"] })).options.extraClaims).toEqual([
      "roles",
      "tenant",
    ]);
  });
  it("refuses symmetric or none ID token algorithms", () => {
    expect(() => createTessera(options({ idTokenAlgorithms: ["HS256" as "RS256"] }))).toThrow(/idTokenAlgorithms/);
  });
});

describe("login", () => {
  it("redirects to /authorize with code + PKCE S256, state and nonce, and sets a sealed short-lived cookie", async () => {
    const tessera = createTessera(options());
    const { url, setCookies } = await tessera.login({ returnTo: "/orders?id=3" });
    const parsed = new URL(url);
    expect(parsed.origin + parsed.pathname).toBe(`${stub.issuer}/authorize`);
    const p = parsed.searchParams;
    expect(p.get("response_type")).toBe("code");
    expect(p.get("client_id")).toBe(stub.clientId);
    expect(p.get("redirect_uri")).toBe("http://127.0.0.1:4001/auth/callback");
    expect(p.get("scope")).toBe("openid profile email offline_access roles");
    expect(p.get("code_challenge_method")).toBe("S256");
    expect(p.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.get("state")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.get("nonce")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(setCookies).toHaveLength(1);
    expect(setCookies[0]).toMatch(
      /^web-tx=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    // Nothing readable in the cookie: the PKCE verifier is encrypted, not just signed.
    expect(setCookies[0]).not.toContain(p.get("state"));
  });
});

describe("cookie sizes", () => {
  it("every cookie stays under the 4096 bytes a browser keeps, even with the longest returnTo accepted", async () => {
    const tessera = createTessera(options());
    for (const returnTo of [`/${"a".repeat(2047)}`, `/${"é".repeat(2000)}`, `/?q=${"%".repeat(2000)}`]) {
      const { setCookies } = await tessera.login({ returnTo });
      expect(setCookies[0]?.length).toBeLessThan(4096);
    }
    // A percent-encoded path that grows past the limit is not kept: the sign-in continues at "/".
    const { result } = await signIn(tessera, `/${"é".repeat(1000)}`);
    expect(result.returnTo).toBe("/");
    stub.idTokenClaims = { roles: ["player", "moderator"], entitlements: ["season-pass", "founder-pack"] };
    const { result: signedIn } = await signIn(tessera);
    for (const cookie of signedIn.setCookies) expect(cookie.length).toBeLessThan(4096);
  });
});

describe("callback", () => {
  it("signs the user in: access JWT, refresh and id-token cookies, and the transaction cookie cleared", async () => {
    const { result, jar } = await signIn();
    expect(result.returnTo).toBe("/cart");
    expect(result.user).toMatchObject({
      id: "user-1",
      sessionId: "sid-1",
      email: "ada@example.com",
      emailVerified: true,
      name: "Ada",
    });
    const maxAge = stub.sessionExpiresAt - Math.floor(clock / 1000);
    expect(result.setCookies[0]).toMatch(
      new RegExp(`^web-at=eyJ[^;]+; Max-Age=${maxAge}; Path=/; HttpOnly; SameSite=Lax$`),
    );
    expect(result.setCookies[1]).toMatch(
      new RegExp(`^web-rt=tsr_[^;]+; Max-Age=${maxAge}; Path=/; HttpOnly; SameSite=Lax$`),
    );
    expect(result.setCookies[2]).toMatch(/^web-idt=eyJ/);
    expect(result.setCookies[3]).toBe("web-tx=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax");
    expect([...jar.keys()].sort()).toEqual(["web-at", "web-idt", "web-rt"]);
    const exchange = stub.tokenRequests.at(-1);
    expect(exchange?.grant_type).toBe("authorization_code");
    expect(exchange?.code_verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("access JWT carries sub, sid, email, email_verified, name and Tessera's roles, 5 minutes, HS256", async () => {
    stub.idTokenClaims = { roles: ["player"], entitlements: ["season-pass"] };
    const { jar } = await signIn();
    const jwt = jar.get("web-at") ?? "";
    const [header, payload] = jwt
      .split(".")
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, "base64url").toString()));
    expect(header).toEqual({ alg: "HS256", typ: "JWT" });
    expect(payload).toEqual({
      sub: "user-1",
      sid: "sid-1",
      sxp: stub.sessionExpiresAt,
      email: "ada@example.com",
      email_verified: true,
      name: "Ada",
      roles: ["player"],
      entitlements: ["season-pass"],
      // Bound to the refresh token issued with it: 128 bits of its SHA-256.
      rth: createHash("sha256")
        .update(jar.get("web-rt") ?? "")
        .digest()
        .subarray(0, 16)
        .toString("base64url"),
      aud: stub.clientId,
      iat: Math.floor(clock / 1000),
      exp: Math.floor(clock / 1000) + 300,
    });
  });

  const failing: Array<[string, (q: URLSearchParams) => void, string]> = [
    ["a different state", (q) => q.set("state", "forged"), "STATE_MISMATCH"],
    ["no state", (q) => q.delete("state"), "STATE_MISMATCH"],
    ["another issuer in iss", (q) => q.set("iss", "https://evil.example"), "ISSUER_MISMATCH"],
    ["no iss although the OP announces it", (q) => q.delete("iss"), "ISSUER_MISMATCH"],
    [
      "an error from the OP",
      (q) => {
        q.delete("code");
        q.set("error", "access_denied");
      },
      "AUTHORIZATION_DENIED",
    ],
    ["no code", (q) => q.delete("code"), "CALLBACK_INVALID"],
    ["an unknown code", (q) => q.set("code", "nope"), "TOKEN_EXCHANGE_FAILED"],
  ];
  it.each(failing)("rejects a callback with %s", async (_name, mutate, code) => {
    const tessera = createTessera(options());
    const login = await tessera.login();
    const query = stub.authorize(login.url);
    mutate(query);
    const error = await tessera
      .callback({ url: `/auth/callback?${query}`, cookieHeader: cookieHeader(login.setCookies) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TesseraError);
    expect((error as TesseraError).code).toBe(code);
  });

  it("a silent sign-in (prompt=none) that finds no Tessera session leaves the visitor anonymous, not in error", async () => {
    const tessera = createTessera(options());
    const login = await tessera.login({ returnTo: "/play", prompt: "none" });
    const params = new URL(login.url).searchParams;
    expect(params.get("prompt")).toBe("none");
    const answer = (error: string) =>
      `/auth/callback?${new URLSearchParams({ error, state: params.get("state") ?? "", iss: stub.issuer })}`;
    const cookies = cookieHeader(login.setCookies);
    await expect(tessera.callback({ url: answer("login_required"), cookieHeader: cookies })).resolves.toEqual({
      user: null,
      returnTo: "/play",
      setCookies: ["web-tx=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"],
    });
    // Other errors stay errors, and an interactive login never treats login_required as "anonymous".
    await expect(tessera.callback({ url: answer("access_denied"), cookieHeader: cookies })).rejects.toMatchObject({
      code: "AUTHORIZATION_DENIED",
      oauthError: "access_denied",
    });
    const interactive = await tessera.login();
    const state = new URL(interactive.url).searchParams.get("state") ?? "";
    await expect(
      tessera.callback({
        url: `/auth/callback?${new URLSearchParams({ error: "login_required", state, iss: stub.issuer })}`,
        cookieHeader: cookieHeader(interactive.setCookies),
      }),
    ).rejects.toMatchObject({ code: "AUTHORIZATION_DENIED" });
  });

  it("rejects a nonce mismatch (ID token minted for another login)", async () => {
    const tessera = createTessera(options());
    const login = await tessera.login();
    const query = stub.authorize(login.url, { nonce: "someone-elses-nonce" });
    await expect(
      tessera.callback({ url: `/auth/callback?${query}`, cookieHeader: cookieHeader(login.setCookies) }),
    ).rejects.toMatchObject({ code: "NONCE_MISMATCH" });
  });

  it("rejects a missing, tampered or expired transaction cookie", async () => {
    const tessera = createTessera(options());
    const login = await tessera.login();
    const query = stub.authorize(login.url);
    const url = `/auth/callback?${query}`;
    await expect(tessera.callback({ url })).rejects.toMatchObject({ code: "LOGIN_STATE_MISSING" });
    const original = cookieHeader(login.setCookies);
    const middle = Math.floor(original.length / 2);
    const tampered = original.slice(0, middle) + (original[middle] === "A" ? "B" : "A") + original.slice(middle + 1);
    await expect(tessera.callback({ url, cookieHeader: tampered })).rejects.toMatchObject({
      code: "LOGIN_STATE_MISSING",
    });
    // Sealed with another app's secret.
    const other = createTessera(options({ appSecret: randomBytes(32) }));
    await expect(other.callback({ url, cookieHeader: cookieHeader(login.setCookies) })).rejects.toMatchObject({
      code: "LOGIN_STATE_MISSING",
    });
    clock += 601_000;
    try {
      await expect(tessera.callback({ url, cookieHeader: cookieHeader(login.setCookies) })).rejects.toMatchObject({
        code: "LOGIN_STATE_MISSING",
      });
    } finally {
      clock -= 601_000;
    }
  });

  it("keeps returnTo only when it is a same-origin path", async () => {
    for (const attempt of ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]) {
      const { result } = await signIn(createTessera(options()), attempt);
      expect(result.returnTo).toBe("/");
    }
  });
});

describe("ID token verification", () => {
  async function callbackWith(forge: (nonce: string) => Promise<string>) {
    // A stub /token that answers a forged ID token: wrap fetch so only the token response is replaced.
    let nonce = "";
    const forgingFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).endsWith("/token")) return response;
      const body = (await response.json()) as Record<string, unknown>;
      return Response.json({ ...body, id_token: await forge(nonce) });
    };
    const tessera = createTessera(options({ fetch: forgingFetch }));
    const login = await tessera.login();
    nonce = new URL(login.url).searchParams.get("nonce") ?? "";
    const query = stub.authorize(login.url);
    return tessera
      .callback({ url: `/auth/callback?${query}`, cookieHeader: cookieHeader(login.setCookies) })
      .catch((e: unknown) => e);
  }
  const base = (nonce: string) => {
    const iat = Math.floor(clock / 1000);
    return { iss: stub.issuer, aud: stub.clientId, sub: "user-1", sid: "sid-1", nonce, iat, exp: iat + 300 };
  };

  it("rejects an HS256 ID token signed with the client secret (algorithm confusion)", async () => {
    const error = await callbackWith((nonce) =>
      new SignJWT(base(nonce)).setProtectedHeader({ alg: "HS256" }).sign(Buffer.from(stub.clientSecret)),
    );
    expect(error).toMatchObject({ code: "ID_TOKEN_INVALID" });
  });
  it("rejects an unsigned (alg none) ID token", async () => {
    const error = await callbackWith(async (nonce) => {
      const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
      return `${enc({ alg: "none" })}.${enc(base(nonce))}.`;
    });
    expect(error).toMatchObject({ code: "ID_TOKEN_INVALID" });
  });
  it("rejects a token of another type signed by the same key: an access token (at+jwt) or a logout token", async () => {
    for (const typ of ["at+jwt", "logout+jwt", "application/at+jwt"]) {
      const error = await callbackWith((nonce) => stub.sign(base(nonce), { typ }));
      expect(error).toMatchObject({ code: "ID_TOKEN_INVALID" });
    }
    const plain = await callbackWith((nonce) => stub.sign(base(nonce), { typ: "JWT" }));
    expect(plain).toMatchObject({ user: { id: "user-1" } });
  });
  it("rejects an ID token for another audience, from another issuer, expired, or without sid", async () => {
    for (const change of [
      { aud: "another-client" },
      { iss: "https://evil.example" },
      { exp: Math.floor(clock / 1000) - 60 },
      { sid: undefined },
    ]) {
      const error = await callbackWith((nonce) => stub.sign({ ...base(nonce), ...change }));
      expect(error).toMatchObject({ code: "ID_TOKEN_INVALID" });
    }
  });
});

describe("authenticate", () => {
  it("accepts the access cookie and the same JWT as a bearer token, with no call to Tessera", async () => {
    const { tessera, jar, header } = await signIn();
    const calls = stub.tokenRequests.length;
    const fromCookie = syncResult(tessera.authenticate({ cookieHeader: header() }));
    expect(fromCookie?.user?.id).toBe("user-1");
    expect(fromCookie?.setCookies).toEqual([]);
    const fromBearer = await tessera.authenticate({ authorization: `Bearer ${jar.get("web-at")}` });
    expect(fromBearer.user?.sessionId).toBe("sid-1");
    expect(stub.tokenRequests.length).toBe(calls);
  });

  it("finds its cookie among others, not one whose name merely ends the same", async () => {
    const { tessera, jar } = await signIn();
    const jwt = jar.get("web-at");
    const header = `xweb-at=garbage; theme=web-at=junk;web-at=${jwt}; other=1`;
    expect(syncResult(tessera.authenticate({ cookieHeader: header }))?.user?.id).toBe("user-1");
    expect(syncResult(tessera.authenticate({ cookieHeader: `xweb-at=${jwt}` }))?.error?.code).toBe("UNAUTHENTICATED");
  });

  it("works with an asynchronous revoked-session store (e.g. Redis): checked on every request", async () => {
    const revoked = new Map<string, number>();
    const store = {
      add: async (sid: string, ttl: number) => void revoked.set(sid, ttl),
      has: async (sid: string) => revoked.has(sid),
    };
    const { tessera, header } = await signIn(createTessera(options({ revokedSessions: store })));
    expect(syncResult(tessera.authenticate({ cookieHeader: header() }))).toBeUndefined(); // needs the async path
    expect((await tessera.authenticate({ cookieHeader: header() })).user?.id).toBe("user-1");
    await store.add("sid-1", 600); // as another instance would after its back-channel call
    const after = await tessera.authenticate({ cookieHeader: header() });
    expect(after.user).toBeNull();
    expect(after.error?.code).toBe("SESSION_REVOKED");
  });

  it("a failing revoked-session store fails closed with SESSION_CHECK_FAILED (503), never a rejection or a crash", async () => {
    let calls = 0;
    const store = {
      add: async () => undefined,
      has: async () => {
        calls++;
        throw new Error("redis: connection refused");
      },
    };
    const { tessera, header } = await signIn(createTessera(options({ revokedSessions: store })));
    // The synchronous probe must not leave a rejected promise behind (Node ends the process on unhandled rejections).
    expect(syncResult(tessera.authenticate({ cookieHeader: header() }))).toBeUndefined();
    calls = 0;
    const result = await tessera.authenticate({ cookieHeader: header() });
    expect(result.user).toBeNull();
    expect(result.error?.code).toBe("SESSION_CHECK_FAILED");
    expect(result.error?.status).toBe(503);
    expect(result.setCookies).toEqual([]);
    expect(calls).toBe(1); // one store round trip per request
    const throwing = createTessera(
      options({
        revokedSessions: {
          add: () => undefined,
          has: () => {
            throw new Error("boom");
          },
        },
      }),
    );
    expect(syncResult(throwing.authenticate({ cookieHeader: header() }))?.error?.code).toBe("SESSION_CHECK_FAILED");
  });

  it("a session ended while its refresh was in flight is refused, not renewed", async () => {
    const { tessera, header } = await signIn();
    stub.tokenDelayMs = 100;
    clock += 301_000;
    try {
      const pending = tessera.authenticate({ cookieHeader: header() });
      await new Promise((resolve) => setTimeout(resolve, 20));
      await tessera.revokeSession("sid-1", "user-1", "backchannel_logout");
      const result = await pending;
      expect(result.user).toBeNull();
      expect(result.error?.code).toBe("SESSION_REVOKED");
      expect(result.setCookies).toEqual([
        "web-at=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        "web-rt=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        "web-idt=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
      ]);
      // A request carrying only the old refresh cookie (no access JWT to check) gets the remembered outcome: refused too.
      const onlyRefresh = header().replace(/web-at=[^;]+; /, "");
      expect((await tessera.authenticate({ cookieHeader: onlyRefresh })).error?.code).toBe("SESSION_REVOKED");
    } finally {
      clock -= 301_000;
    }
  });

  it("anonymous requests get UNAUTHENTICATED and no cookies", async () => {
    const result = await createTessera(options()).authenticate({});
    expect(result.user).toBeNull();
    expect(result.error?.code).toBe("UNAUTHENTICATED");
    expect(result.setCookies).toEqual([]);
  });

  it("refreshes an expired access JWT: one rotation, both cookies set again, same user", async () => {
    const { tessera, jar, header } = await signIn();
    const oldRefresh = jar.get("web-rt");
    clock += 301_000;
    try {
      expect(syncResult(tessera.authenticate({ cookieHeader: header() }))).toBeUndefined();
      const result = await tessera.authenticate({ cookieHeader: header() });
      expect(result.user?.id).toBe("user-1");
      expect(result.user?.expiresAt).toBe(Math.floor(clock / 1000) + 300);
      const refreshCalls = stub.tokenRequests.filter((r) => r.grant_type === "refresh_token");
      expect(refreshCalls).toEqual([{ grant_type: "refresh_token", refresh_token: oldRefresh }]);
      cookieHeader(result.setCookies, jar);
      expect(jar.get("web-rt")).not.toBe(oldRefresh);
      expect(syncResult(tessera.authenticate({ cookieHeader: header() }))?.user?.id).toBe("user-1");
    } finally {
      clock -= 301_000;
    }
  });

  it("a role Tessera no longer lists is gone after the next refresh (the new ID token is the whole truth)", async () => {
    stub.idTokenClaims = { roles: ["admin"], permissions: ["refunds:create"], entitlements: ["season-pass"] };
    const { tessera, jar, header } = await signIn();
    expect(syncResult(tessera.authenticate({ cookieHeader: header() }))?.user?.roles).toEqual(["admin"]);
    stub.idTokenClaims = { name: undefined }; // demoted, and the display name removed
    clock += 301_000;
    try {
      const result = await tessera.authenticate({ cookieHeader: header() });
      expect(result.user?.id).toBe("user-1");
      expect(result.user?.roles).toEqual([]);
      expect(result.user?.permissions).toEqual([]);
      expect(result.user?.name).toBeUndefined();
      expect(result.user?.claims.entitlements).toBeUndefined();
      cookieHeader(result.setCookies, jar);
    } finally {
      clock -= 301_000;
    }
  });

  it("refreshes shortly before expiry too", async () => {
    const { tessera, header } = await signIn();
    clock += 280_000;
    try {
      expect(syncResult(tessera.authenticate({ cookieHeader: header() }))).toBeUndefined();
      const result = await tessera.authenticate({ cookieHeader: header() });
      expect(result.setCookies.length).toBeGreaterThan(0);
    } finally {
      clock -= 280_000;
    }
  });

  it("concurrent requests of one user share one refresh (single-flight) and get the same new tokens", async () => {
    const { tessera, header } = await signIn();
    stub.tokenDelayMs = 50;
    clock += 301_000;
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => tessera.authenticate({ cookieHeader: header() })),
      );
      expect(stub.tokenRequests.filter((r) => r.grant_type === "refresh_token")).toHaveLength(1);
      const first = results[0]?.setCookies;
      for (const r of results) {
        expect(r.user?.id).toBe("user-1");
        expect(r.setCookies).toEqual(first);
      }
      // A straggler still carrying the old refresh token right after gets the same outcome, not a second rotation
      // (which Tessera would see as reuse).
      const late = await tessera.authenticate({ cookieHeader: header() });
      expect(late.setCookies).toEqual(first);
      expect(stub.tokenRequests.filter((r) => r.grant_type === "refresh_token")).toHaveLength(1);
    } finally {
      clock -= 301_000;
    }
  });

  it("copes with Tessera's grace window when two processes race: the loser keeps the user and touches no cookie", async () => {
    const { header } = await signIn();
    const processA = createTessera(options());
    const processB = createTessera(options());
    clock += 301_000;
    try {
      const cookies = header();
      const a = await processA.authenticate({ cookieHeader: cookies });
      expect(a.user?.id).toBe("user-1");
      expect(a.setCookies).toHaveLength(3);
      const b = await processB.authenticate({ cookieHeader: cookies });
      expect(b.user?.id).toBe("user-1");
      expect(b.error).toBeNull();
      expect(b.setCookies).toEqual([]);
      // Without an access cookie to vouch for the user, the loser answers anonymous, and still clears nothing.
      const onlyRefresh = cookies.replace(/web-at=[^;]+; /, "");
      expect(onlyRefresh).not.toContain("web-at=");
      expect(onlyRefresh).toContain("web-rt=");
      const c = await createTessera(options()).authenticate({ cookieHeader: onlyRefresh });
      expect(c.user).toBeNull();
      expect(c.error?.code).toBe("REFRESH_FAILED");
      expect(c.error?.tesseraCode).toBe("REFRESH_ROTATED_CONCURRENTLY");
      expect(c.setCookies).toEqual([]);
    } finally {
      clock -= 301_000;
    }
  });

  /** A fetch that rewrites Tessera's /token error bodies, to try the SDK against other wordings of one answer. */
  const rewriteTokenErrors =
    (rewrite: (body: Record<string, unknown>) => Record<string, unknown>): typeof fetch =>
    async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).endsWith("/token") || response.ok) return response;
      return Response.json(rewrite((await response.json()) as Record<string, unknown>), { status: response.status });
    };

  it("recognises the grace window by tessera_code alone, whatever error_description says", async () => {
    const { header } = await signIn();
    clock += 301_000;
    try {
      const cookies = header();
      expect((await createTessera(options()).authenticate({ cookieHeader: cookies })).setCookies).toHaveLength(3);
      const reworded = rewriteTokenErrors((body) => ({ ...body, error_description: "Token already exchanged." }));
      const loser = await createTessera(options({ fetch: reworded })).authenticate({ cookieHeader: cookies });
      expect(loser.user?.id).toBe("user-1");
      expect(loser.error).toBeNull();
      expect(loser.setCookies).toEqual([]);
    } finally {
      clock -= 301_000;
    }
  });

  it("never falls back to prose: invalid_grant without tessera_code is a refusal, even if it says 'concurrent'", async () => {
    const { header } = await signIn();
    clock += 301_000;
    try {
      const cookies = header();
      expect((await createTessera(options()).authenticate({ cookieHeader: cookies })).setCookies).toHaveLength(3);
      const proseOnly = rewriteTokenErrors(({ tessera_code: _dropped, ...body }) => body);
      const result = await createTessera(options({ fetch: proseOnly })).authenticate({ cookieHeader: cookies });
      expect(result.error?.oauthErrorDescription).toMatch(/concurrent request/);
      expect(result.user).toBeNull();
      expect(result.error?.code).toBe("REFRESH_FAILED");
      expect(result.error?.tesseraCode).toBeUndefined();
      expect(result.setCookies).toEqual([
        "web-at=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        "web-rt=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        "web-idt=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
      ]);
    } finally {
      clock -= 301_000;
    }
  });

  it("regression: another user's expired access JWT next to a refresh token in its grace window is not accepted", async () => {
    // The victim's access JWT, long expired (e.g. copied from an old log or a shared computer).
    stub.idTokenClaims = { sub: "victim" };
    stub.sid = "sid-victim";
    const victim = await signIn();
    stub.idTokenClaims = {};
    stub.sid = "sid-1";
    const attacker = await signIn();
    clock += 3600_000;
    try {
      // The attacker rotates their own refresh token on one instance, then, within Tessera's grace window, sends the
      // victim's access JWT with their own old refresh token to another instance: Tessera answers "concurrent".
      const instanceA = createTessera(options());
      expect((await instanceA.authenticate({ cookieHeader: attacker.header() })).user?.id).toBe("user-1");
      const mixed = `web-at=${victim.jar.get("web-at")}; web-rt=${attacker.jar.get("web-rt")}`;
      const result = await createTessera(options()).authenticate({ cookieHeader: mixed });
      expect(result.user).toBeNull();
      expect(result.error?.code).toBe("REFRESH_FAILED");
      expect(result.setCookies).toEqual([]);
    } finally {
      clock -= 3600_000;
    }
  });

  it("regression: a refresh answered without an ID token never takes the identity of an unrelated access JWT", async () => {
    stub.idTokenClaims = { sub: "victim" };
    stub.sid = "sid-victim";
    const victim = await signIn();
    stub.idTokenClaims = {};
    stub.sid = "sid-1";
    const attacker = await signIn();
    // An OP that does not return an ID token on refresh (allowed by OIDC Core 12.2).
    const noIdToken: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).endsWith("/token") || !response.ok) return response;
      const { id_token: _dropped, ...body } = (await response.json()) as Record<string, unknown>;
      return Response.json(body);
    };
    clock += 3600_000;
    try {
      const mixed = `web-at=${victim.jar.get("web-at")}; web-rt=${attacker.jar.get("web-rt")}`;
      const result = await createTessera(options({ fetch: noIdToken })).authenticate({ cookieHeader: mixed });
      expect(result.user).toBeNull();
      expect(result.error?.code).toBe("REFRESH_FAILED");
      // The attacker's own cookies, refreshed the same way, still work.
      const own = await createTessera(options({ fetch: noIdToken })).authenticate({ cookieHeader: attacker.header() });
      expect(own.user?.id).toBe("user-1");
    } finally {
      clock -= 3600_000;
    }
  });

  it("a refused refresh (revoked / reused / session ended) clears the cookies and signs the user out", async () => {
    const { tessera, header } = await signIn();
    stub.refreshMode = "invalid_grant";
    clock += 301_000;
    try {
      const result = await tessera.authenticate({ cookieHeader: header() });
      expect(result.user).toBeNull();
      expect(result.error?.code).toBe("REFRESH_FAILED");
      expect(result.error?.oauthError).toBe("invalid_grant");
      expect(result.setCookies).toEqual([
        "web-at=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        "web-rt=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        "web-idt=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
      ]);
    } finally {
      clock -= 301_000;
    }
  });

  it("Tessera unavailable during refresh: no cookies cleared; a still-valid JWT keeps working", async () => {
    const { tessera, header } = await signIn();
    stub.refreshMode = 503;
    clock += 290_000;
    try {
      const nearExpiry = await tessera.authenticate({ cookieHeader: header() });
      expect(nearExpiry.user?.id).toBe("user-1");
      expect(nearExpiry.setCookies).toEqual([]);
    } finally {
      clock -= 290_000;
    }
    clock += 301_000;
    try {
      const expired = await tessera.authenticate({ cookieHeader: header() });
      expect(expired.user).toBeNull();
      expect(expired.error?.code).toBe("REFRESH_FAILED");
      expect(expired.setCookies).toEqual([]);
      // Once Tessera is back, the very next request refreshes (a transient failure is not remembered).
      stub.refreshMode = "ok";
      const recovered = await tessera.authenticate({ cookieHeader: header() });
      expect(recovered.user?.id).toBe("user-1");
      expect(recovered.setCookies).toHaveLength(3);
    } finally {
      clock -= 301_000;
    }
  });

  it("a still-valid access JWT works on its own while Tessera is down, bound to the refresh cookie or not", async () => {
    const { tessera, jar } = await signIn();
    stub.refreshMode = 503;
    clock += 290_000;
    try {
      // e.g. a JWT issued before access JWTs carried `rth`, or a refresh cookie rotated by another tab meanwhile.
      const unbound = `web-at=${jar.get("web-at")}; web-rt=tsr_${"x".repeat(43)}`;
      const result = await tessera.authenticate({ cookieHeader: unbound });
      expect(result.user?.id).toBe("user-1");
      expect(result.setCookies).toEqual([]);
    } finally {
      clock -= 290_000;
    }
  });

  it("never refreshes on a WebSocket upgrade (a 101 cannot carry cookies)", async () => {
    const { tessera, header } = await signIn();
    clock += 301_000;
    try {
      const calls = stub.tokenRequests.length;
      const result = await tessera.authenticate(authInputFrom({ cookie: header(), upgrade: "websocket" }));
      expect(result.user).toBeNull();
      expect(result.error?.code).toBe("ACCESS_TOKEN_EXPIRED");
      expect(stub.tokenRequests.length).toBe(calls);
    } finally {
      clock -= 301_000;
    }
  });
});

describe("back-channel logout", () => {
  const logoutClaims = () => {
    const iat = Math.floor(clock / 1000);
    return {
      iss: stub.issuer,
      aud: stub.clientId,
      sub: "user-1",
      sid: "sid-1",
      iat,
      exp: iat + 120,
      jti: randomBytes(8).toString("hex"),
      events: { "http://schemas.openid.net/event/backchannel-logout": {} },
    };
  };

  it("records the session as revoked: its access JWTs are refused at once, sockets are told", async () => {
    const { tessera, header } = await signIn();
    const events: unknown[] = [];
    tessera.onSessionRevoked((event) => events.push(event));
    expect(syncResult(tessera.authenticate({ cookieHeader: header() }))?.user?.id).toBe("user-1");
    const token = await stub.sign(logoutClaims(), { typ: "logout+jwt" });
    await tessera.handleBackchannelLogout({ logoutToken: token });
    expect(events).toEqual([{ sessionId: "sid-1", userId: "user-1", reason: "backchannel_logout" }]);
    const after = syncResult(tessera.authenticate({ cookieHeader: header() }));
    expect(after?.user).toBeNull();
    expect(after?.error?.code).toBe("SESSION_REVOKED");
    expect(after?.setCookies).toHaveLength(3);
  });

  const bad: Array<[string, () => Promise<string>]> = [
    ["without the logout+jwt typ", () => stub.sign(logoutClaims())],
    ["with a nonce", () => stub.sign({ ...logoutClaims(), nonce: "n" }, { typ: "logout+jwt" })],
    ["for another audience", () => stub.sign({ ...logoutClaims(), aud: "other" }, { typ: "logout+jwt" })],
    ["from another issuer", () => stub.sign({ ...logoutClaims(), iss: "https://evil.example" }, { typ: "logout+jwt" })],
    ["without events", () => stub.sign({ ...logoutClaims(), events: undefined }, { typ: "logout+jwt" })],
    ["with another event", () => stub.sign({ ...logoutClaims(), events: { "urn:other": {} } }, { typ: "logout+jwt" })],
    ["without sid", () => stub.sign({ ...logoutClaims(), sid: undefined }, { typ: "logout+jwt" })],
    ["without iat", () => stub.sign({ ...logoutClaims(), iat: undefined }, { typ: "logout+jwt" })],
    ["without exp", () => stub.sign({ ...logoutClaims(), exp: undefined }, { typ: "logout+jwt" })],
    ["without jti", () => stub.sign({ ...logoutClaims(), jti: undefined }, { typ: "logout+jwt" })],
    [
      "not valid yet (nbf in the future)",
      () => stub.sign({ ...logoutClaims(), nbf: Math.floor(clock / 1000) + 600 }, { typ: "logout+jwt" }),
    ],
    ["expired", () => stub.sign({ ...logoutClaims(), exp: Math.floor(clock / 1000) - 30 }, { typ: "logout+jwt" })],
    [
      "signed HS256 with the client secret",
      () =>
        new SignJWT(logoutClaims())
          .setProtectedHeader({ alg: "HS256", typ: "logout+jwt" })
          .sign(Buffer.from(stub.clientSecret)),
    ],
    ["that is not a JWT", async () => "garbage"],
  ];
  it.each(bad)("rejects a logout token %s and revokes nothing", async (_name, make) => {
    const tessera = createTessera(options());
    const events: unknown[] = [];
    tessera.onSessionRevoked((event) => events.push(event));
    await expect(tessera.handleBackchannelLogout({ logoutToken: await make() })).rejects.toMatchObject({
      code: "LOGOUT_TOKEN_INVALID",
    });
    expect(events).toEqual([]);
    expect(tessera.options.revokedSessions.has("sid-1")).toBe(false);
  });
});

describe("logout", () => {
  it("still signs out (cookies cleared, refresh token revoked) when the revoked-session store fails", async () => {
    const store = {
      add: async () => {
        throw new Error("redis: connection refused");
      },
      has: () => false,
    };
    const { tessera, jar, header } = await signIn(createTessera(options({ revokedSessions: store })));
    const { url, setCookies } = await tessera.logout({ cookieHeader: header() });
    expect(new URL(url).pathname).toBe("/logout");
    expect(setCookies).toHaveLength(4);
    expect(setCookies.every((c) => c.includes("Max-Age=0"))).toBe(true);
    expect(stub.revoked).toContain(jar.get("web-rt"));
  });

  it("revokes locally and at Tessera, clears cookies and returns the RP-initiated logout URL", async () => {
    const { tessera, jar, header } = await signIn();
    const cookies = header();
    const events: unknown[] = [];
    tessera.onSessionRevoked((event) => events.push(event));
    const { url, setCookies } = await tessera.logout({ cookieHeader: cookies });
    const parsed = new URL(url);
    expect(parsed.origin + parsed.pathname).toBe(`${stub.issuer}/logout`);
    expect(parsed.searchParams.get("id_token_hint")).toBe(jar.get("web-idt"));
    expect(parsed.searchParams.get("post_logout_redirect_uri")).toBe("http://127.0.0.1:4001/");
    expect(parsed.searchParams.get("client_id")).toBe(stub.clientId);
    // No state: never checked by the SDK, it only came back as `/?state=…` in the app's URL after sign-out.
    expect(parsed.searchParams.has("state")).toBe(false);
    expect(setCookies).toEqual([
      "web-at=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
      "web-rt=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
      "web-idt=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
      "web-tx=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    ]);
    expect(stub.revoked).toContain(jar.get("web-rt"));
    expect(events).toEqual([{ sessionId: "sid-1", userId: "user-1", reason: "logout" }]);
    // A copy of the old cookie replayed against this instance is refused at once.
    expect(syncResult(tessera.authenticate({ cookieHeader: cookies }))?.error?.code).toBe("SESSION_REVOKED");
  });
});
