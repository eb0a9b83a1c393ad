import { createHash, createHmac, generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";

/**
 * Real upstreams on loopback for the federation suites (never module mocks):
 * - `startOidcUpstream`: node-oidc-provider v9 (a certified OpenID Provider). Its interaction step signs in whichever
 *   account the test set with `as(...)` and grants the scopes, so a round trip is all redirects.
 * - `startOAuthStub`: endpoints shaped like GitHub's and Discord's (authorize → code, token with PKCE, user, emails).
 * - `startSteamStub`: an OpenID 2.0 provider like Steam's: checkid_setup answers a signed assertion, and
 *   check_authentication verifies the signature and spends the response nonce.
 */

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{
  server: Server;
  base: string;
}> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function body(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

export interface OidcUpstream {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The account the next interaction signs in, with its claims. */
  as(accountId: string, claims: Record<string, unknown>): void;
  close(): Promise<void>;
}

export async function startOidcUpstream(redirectUri: string): Promise<OidcUpstream> {
  const clientId = "tessera-downstream";
  const clientSecret = randomBytes(32).toString("base64url");
  const accounts = new Map<string, Record<string, unknown>>();
  let current = "";
  let provider: Provider | undefined;
  const { server, base } = await listen(async (req, res) => {
    if (!provider) return void res.writeHead(503).end();
    if (req.url?.startsWith("/interaction/")) {
      const details = await provider.interactionDetails(req, res);
      const grant = new provider.Grant({ accountId: current, clientId });
      grant.addOIDCScope(String(details.params.scope));
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: current }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    provider.callback()(req, res);
  });
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  provider = new Provider(base, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), kid: "upstream", alg: "RS256", use: "sig" }] },
    scopes: ["openid", "email", "profile"],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id, ...accounts.get(id) }) }),
  });
  return {
    issuer: base,
    clientId,
    clientSecret,
    as(accountId, claims) {
      current = accountId;
      accounts.set(accountId, claims);
    },
    close: () => close(server),
  };
}

export interface OAuthStub {
  base: string;
  clientId: string;
  clientSecret: string;
  /** The user the next authorization signs in: GitHub's /user (+ /user/emails) or Discord's /users/@me shape. */
  user: Record<string, unknown>;
  emails: Array<Record<string, unknown>>;
  tokenRequests: number;
  close(): Promise<void>;
}

/**
 * GitHub-/Discord-/Twitch-shaped endpoints: /authorize, /token (client secret + PKCE S256 checked), /user,
 * /user/emails, /users/@me, and /helix/users (Client-Id header required).
 */
export async function startOAuthStub(): Promise<OAuthStub> {
  const codes = new Map<string, { challenge: string; redirectUri: string; user: Record<string, unknown> }>();
  const tokens = new Map<string, { user: Record<string, unknown>; emails: Array<Record<string, unknown>> }>();
  const stub: OAuthStub = {
    base: "",
    clientId: "stub-client",
    clientSecret: randomBytes(24).toString("base64url"),
    user: {},
    emails: [],
    tokenRequests: 0,
    close: async () => {},
  };
  const json = (res: ServerResponse, status: number, value: unknown) =>
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
  const { server, base } = await listen(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://stub");
    if (url.pathname === "/authorize") {
      const q = url.searchParams;
      if (q.get("client_id") !== stub.clientId || q.get("code_challenge_method") !== "S256") return json(res, 400, {});
      const code = randomBytes(16).toString("hex");
      codes.set(code, {
        challenge: q.get("code_challenge") ?? "",
        redirectUri: q.get("redirect_uri") ?? "",
        user: stub.user,
      });
      const back = new URL(q.get("redirect_uri") ?? "");
      back.searchParams.set("code", code);
      back.searchParams.set("state", q.get("state") ?? "");
      return void res.writeHead(302, { location: back.href }).end();
    }
    if (url.pathname === "/token" && req.method === "POST") {
      stub.tokenRequests++;
      const form = await body(req);
      const grant = codes.get(form.get("code") ?? "");
      codes.delete(form.get("code") ?? "");
      const verifier = form.get("code_verifier") ?? "";
      const challenge = createHash("sha256").update(verifier).digest("base64url");
      if (
        !grant ||
        form.get("client_id") !== stub.clientId ||
        form.get("client_secret") !== stub.clientSecret ||
        grant.challenge !== challenge ||
        grant.redirectUri !== form.get("redirect_uri")
      ) {
        // GitHub answers errors with 200 and an error body; Discord with 400. Either is refused downstream.
        return json(res, 400, { error: "invalid_grant" });
      }
      const token = randomBytes(20).toString("hex");
      tokens.set(token, { user: grant.user, emails: stub.emails });
      return json(res, 200, { access_token: token, token_type: "bearer", scope: "read:user,user:email" });
    }
    const bearer = tokens.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
    if (!bearer) return json(res, 401, { message: "Bad credentials" });
    if (url.pathname === "/user" || url.pathname === "/users/@me") return json(res, 200, bearer.user);
    if (url.pathname === "/user/emails") return json(res, 200, bearer.emails);
    // Twitch's Helix API: the app's Client-Id header must come with the user's token; the users in a `data` list.
    if (url.pathname === "/helix/users") {
      if (req.headers["client-id"] !== stub.clientId) {
        return json(res, 401, {
          error: "Unauthorized",
          status: 401,
          message: "Client ID and OAuth token do not match",
        });
      }
      return json(res, 200, { data: [bearer.user] });
    }
    return json(res, 404, {});
  });
  stub.base = base;
  stub.close = () => close(server);
  return stub;
}

export interface SteamStub {
  endpoint: string;
  /** The SteamID64 the next checkid_setup asserts. */
  steamId: string;
  /** When set, the assertion names this return_to instead of the one asked for (an assertion made for another site). */
  returnToOverride: string | undefined;
  checks: number;
  close(): Promise<void>;
}

const SIGNED = "signed,op_endpoint,claimed_id,identity,return_to,response_nonce,assoc_handle";

export async function startSteamStub(): Promise<SteamStub> {
  const key = randomBytes(32);
  const spent = new Set<string>();
  const sign = (p: URLSearchParams) =>
    createHmac("sha256", key)
      .update(
        SIGNED.split(",")
          .map((f) => `${f}:${p.get(`openid.${f}`)}\n`)
          .join(""),
      )
      .digest("base64");
  const stub: SteamStub = {
    endpoint: "",
    steamId: "76561197960287930",
    returnToOverride: undefined,
    checks: 0,
    close: async () => {},
  };
  const { server, base } = await listen(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://stub");
    if (url.pathname !== "/openid/login") return void res.writeHead(404).end();
    if (req.method === "GET" && url.searchParams.get("openid.mode") === "checkid_setup") {
      const returnTo = stub.returnToOverride ?? url.searchParams.get("openid.return_to") ?? "";
      const claimed = `https://steamcommunity.com/openid/id/${stub.steamId}`;
      const p = new URLSearchParams({
        "openid.ns": "http://specs.openid.net/auth/2.0",
        "openid.mode": "id_res",
        "openid.op_endpoint": stub.endpoint,
        "openid.claimed_id": claimed,
        "openid.identity": claimed,
        "openid.return_to": returnTo,
        "openid.response_nonce": `${new Date().toISOString().slice(0, 19)}Z${randomBytes(6).toString("hex")}`,
        "openid.assoc_handle": "1234567890",
        "openid.signed": SIGNED.replace("signed,", ""),
      });
      p.set("openid.sig", sign(p));
      const back = new URL(returnTo);
      for (const [k, v] of p) back.searchParams.set(k, v);
      return void res.writeHead(302, { location: back.href }).end();
    }
    if (req.method === "POST") {
      stub.checks++;
      const form = await body(req);
      const nonce = form.get("openid.response_nonce") ?? "";
      const valid =
        form.get("openid.mode") === "check_authentication" &&
        form.get("openid.sig") === sign(form) &&
        !spent.has(nonce);
      if (valid) spent.add(nonce);
      return void res
        .writeHead(200, { "content-type": "text/plain" })
        .end(`ns:http://specs.openid.net/auth/2.0\nis_valid:${valid}\n`);
    }
    res.writeHead(400).end();
  });
  stub.endpoint = `${base}/openid/login`;
  stub.close = () => close(server);
  return stub;
}

/**
 * Follows redirects from `url` (outside Tessera) with a cookie jar until one points at `issuer`; returns that
 * location's path and query, to be injected into Tessera by the test's browser.
 */
export async function followToIssuer(url: string, issuer: string): Promise<string> {
  const jar = new Map<string, string>();
  let next = url;
  for (let hops = 0; hops < 15; hops++) {
    if (next.startsWith(issuer)) {
      const u = new URL(next);
      return u.pathname + u.search;
    }
    const response = await fetch(next, {
      redirect: "manual",
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") },
    });
    for (const c of response.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const [k, ...v] = (pair ?? "").split("=");
      if (k) jar.set(k.trim(), v.join("="));
    }
    const location = response.headers.get("location");
    if (!location) throw new Error(`${next} answered ${response.status} without a redirect: ${await response.text()}`);
    next = new URL(location, next).href;
  }
  throw new Error("too many redirects");
}
