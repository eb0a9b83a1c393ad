import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";

/**
 * A small OpenID Provider test double the tests start themselves on 127.0.0.1: discovery, JWKS (RS256 key made with
 * jose), /token (authorization_code with PKCE, refresh_token with rotation), /revoke. Tests drive "/authorize" by
 * calling `authorize(loginUrl)`, which records a code exactly as an OP would after the user signed in.
 */
export interface StubIssuer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Every /token request body (parsed), in order. */
  tokenRequests: Array<Record<string, string>>;
  revoked: string[];
  /** Next refresh answers: "ok" (default), an OAuth error, or an HTTP status. */
  refreshMode: "ok" | "invalid_grant" | 503;
  /** Delay of /token answers in ms (to hold refreshes in flight). */
  tokenDelayMs: number;
  /** Extra claims put into ID tokens. */
  idTokenClaims: Record<string, unknown>;
  sessionExpiresAt: number;
  sid: string;
  /** Simulates the user signing in at /authorize: returns the callback query the OP would redirect with. */
  authorize(loginUrl: string, overrides?: { nonce?: string; iss?: string }): URLSearchParams;
  /** Signs a JWT with the issuer's key (for logout tokens and crafted ID tokens). */
  sign(payload: JWTPayload, header?: { typ?: string; alg?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startStubIssuer(now: () => number): Promise<StubIssuer> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const codes = new Map<string, { nonce: string; challenge: string; redirectUri: string }>();
  const refreshTokens = new Map<string, "live" | "rotated">();
  let server: Server | undefined;

  const sign = (payload: JWTPayload, header: { typ?: string; alg?: string } = {}) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: header.alg ?? "RS256", kid: "k1", ...(header.typ ? { typ: header.typ } : {}) })
      .sign(privateKey);

  const stub: StubIssuer = {
    issuer: "",
    clientId: "client-web",
    clientSecret: randomBytes(32).toString("base64url"),
    tokenRequests: [],
    revoked: [],
    refreshMode: "ok",
    tokenDelayMs: 0,
    idTokenClaims: {},
    sessionExpiresAt: Math.floor(now() / 1000) + 30 * 86400,
    sid: "sid-1",
    authorize(loginUrl, overrides = {}) {
      const params = new URL(loginUrl).searchParams;
      const code = randomBytes(16).toString("base64url");
      codes.set(code, {
        nonce: overrides.nonce ?? params.get("nonce") ?? "",
        challenge: params.get("code_challenge") ?? "",
        redirectUri: params.get("redirect_uri") ?? "",
      });
      return new URLSearchParams({ code, state: params.get("state") ?? "", iss: overrides.iss ?? stub.issuer });
    },
    sign,
    close: () => new Promise((resolve) => server?.close(() => resolve())),
  };

  const idToken = (extra: JWTPayload) => {
    const iat = Math.floor(now() / 1000);
    return sign({
      iss: stub.issuer,
      aud: stub.clientId,
      sub: "user-1",
      sid: stub.sid,
      email: "ada@example.com",
      email_verified: true,
      name: "Ada",
      iat,
      exp: iat + 300,
      ...stub.idTokenClaims,
      ...extra,
    });
  };

  const issue = async (extra: JWTPayload) => {
    const refresh = `tsr_${randomBytes(32).toString("base64url")}`;
    refreshTokens.set(refresh, "live");
    return {
      access_token: "opaque-for-the-sdk",
      token_type: "Bearer",
      expires_in: 300,
      id_token: await idToken(extra),
      refresh_token: refresh,
      scope: "openid profile email offline_access",
      session_expires_at: stub.sessionExpiresAt,
    };
  };

  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
  };

  server = createServer(async (req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    const path = new URL(req.url ?? "/", stub.issuer).pathname;
    if (path === "/.well-known/openid-configuration") {
      return json(200, {
        issuer: stub.issuer,
        authorization_endpoint: `${stub.issuer}/authorize`,
        token_endpoint: `${stub.issuer}/token`,
        jwks_uri: `${stub.issuer}/jwks`,
        end_session_endpoint: `${stub.issuer}/logout`,
        revocation_endpoint: `${stub.issuer}/revoke`,
        authorization_response_iss_parameter_supported: true,
      });
    }
    if (path === "/jwks") return json(200, { keys: [jwk] });
    const body = await readBody(req);
    const basic = Buffer.from((req.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString();
    const authenticated =
      basic === `${stub.clientId}:${stub.clientSecret}` ||
      (body.client_id === stub.clientId && body.client_secret === stub.clientSecret);
    if (path === "/revoke") {
      if (!authenticated) return json(401, { error: "invalid_client" });
      stub.revoked.push(body.token ?? "");
      return json(200, {});
    }
    if (path !== "/token") return json(404, { error: "not_found" });
    stub.tokenRequests.push(body);
    if (stub.tokenDelayMs) await new Promise((resolve) => setTimeout(resolve, stub.tokenDelayMs));
    if (!authenticated) return json(401, { error: "invalid_client" });
    if (body.grant_type === "authorization_code") {
      const entry = codes.get(body.code ?? "");
      codes.delete(body.code ?? "");
      const challenge = createHash("sha256")
        .update(body.code_verifier ?? "")
        .digest("base64url");
      if (!entry || entry.challenge !== challenge || entry.redirectUri !== body.redirect_uri) {
        return json(400, { error: "invalid_grant", error_description: "bad code" });
      }
      return json(200, await issue({ nonce: entry.nonce }));
    }
    if (body.grant_type === "refresh_token") {
      if (stub.refreshMode === 503) return json(503, { error: "temporarily_unavailable" });
      if (refreshTokens.get(body.refresh_token ?? "") === "rotated" && stub.refreshMode === "ok") {
        // Tessera's grace-window answer to a token its own client rotated moments ago: nothing is revoked.
        return json(400, {
          error: "invalid_grant",
          error_description:
            "The refresh token was just rotated by a concurrent request; use the newest refresh token.",
          tessera_code: "REFRESH_ROTATED_CONCURRENTLY",
        });
      }
      if (stub.refreshMode === "invalid_grant" || refreshTokens.get(body.refresh_token ?? "") !== "live") {
        return json(400, { error: "invalid_grant", error_description: "refresh token revoked" });
      }
      refreshTokens.set(body.refresh_token ?? "", "rotated");
      return json(200, await issue({}));
    }
    return json(400, { error: "unsupported_grant_type" });
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  stub.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return stub;
}

/** Turns Set-Cookie values into a Cookie header a browser would send back (ignoring cleared cookies). */
export function cookieHeader(setCookies: readonly string[], jar: Map<string, string> = new Map()): string {
  for (const line of setCookies) {
    const [pair] = line.split(";");
    const index = pair?.indexOf("=") ?? -1;
    if (!pair || index < 0) continue;
    const name = pair.slice(0, index);
    const value = pair.slice(index + 1);
    if (/Max-Age=0\b/.test(line) || value === "") jar.delete(name);
    else jar.set(name, value);
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
}
