import { createServer } from "node:net";
import * as oauth from "oauth4webapi";
import { expect } from "vitest";
import { type ClientInput, createClient, createPublicClient } from "../../src/libraries/clients/index.ts";
import { decode, formFor, PASSWORD } from "../accounts/helpers.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";
import { createUser } from "../oauth/helpers.ts";

/**
 * The conformance harness: Tessera listening on 127.0.0.1 (an ephemeral port) and driven over real HTTP by
 * oauth4webapi, a third-party OAuth 2.0 / OpenID Connect client library, as the OpenID Foundation's test suite drives
 * an OP: the suite plays the relying party (oauth4webapi here) and the user agent (a cookie-keeping fetch that
 * follows redirects and fills in the sign-in and consent forms, like the suite's browser automation).
 */
export interface Conformance {
  t: TestApp;
  issuer: string;
  as: oauth.AuthorizationServer;
  /** Options for every oauth4webapi request (the issuer is plain http on loopback: tests only). */
  options: { [oauth.allowInsecureRequests]: true };
  close(): Promise<void>;
}

const NO_THROTTLING = {
  THROTTLE_IP_MAX_FAILURES: "100000",
  THROTTLE_ACCOUNT_FREE_FAILURES: "1000",
  THROTTLE_ACCOUNT_LOCK_THRESHOLD: "10000",
  ACCOUNT_RESPONSE_FLOOR_MS: "0",
  // The suite signs the same tester in dozens of times from one IP; the per-route limits are tested elsewhere.
  RATE_LIMIT_ENABLED: "false",
};

/** A free TCP port on 127.0.0.1 (the issuer must name the port before the app is built). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export async function startConformance(env: Record<string, string> = {}): Promise<Conformance> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const t = await buildTestApp({ ...NO_THROTTLING, ISSUER: issuer, ...env });
    try {
      await t.app.listen({ host: "127.0.0.1", port });
    } catch (error) {
      await t.close();
      if (attempt < 3) continue; // the port was taken between the probe and listen
      throw error;
    }
    const options = { [oauth.allowInsecureRequests]: true } as const;
    const url = new URL(issuer);
    const as = await oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, options));
    return { t, issuer, as, options, close: () => t.close() };
  }
}

export const REDIRECT_URI = "https://rp.conformance.example/callback";
export const POST_LOGOUT_URI = "https://rp.conformance.example/logged-out";

/** A confidential client as the suite registers one statically (third-party unless said otherwise). */
export async function confidentialClient(c: Conformance, input: Partial<ClientInput> = {}) {
  const { client, clientSecret } = await createClient(c.t.app.ctx, {
    name: "Conformance RP",
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_URI],
    firstParty: false,
    ...input,
  });
  return { row: client, client: { client_id: client.clientId } as oauth.Client, secret: clientSecret };
}

export async function publicClient(c: Conformance, input: Partial<ClientInput> = {}) {
  const { client } = await createPublicClient(c.t.app.ctx, {
    name: "Conformance public RP",
    redirectUris: [REDIRECT_URI],
    firstParty: false,
    ...input,
  });
  return { row: client, client: { client_id: client.clientId } as oauth.Client };
}

/** A verified user with a password, as the suite's tester signs in with. */
export async function testUser(c: Conformance) {
  const email = `tester-${Math.random().toString(36).slice(2, 10)}@conformance.example`;
  const user = await createUser(c.t.app, { email, password: PASSWORD, displayName: "Conformance Tester" });
  return { user, email, password: PASSWORD };
}

export interface Visit {
  status: number;
  url: string;
  body: string;
  /** The final Location when the chain stopped at the client's redirect URI (or another off-server URL). */
  redirectedTo: URL | undefined;
  /** The pages seen on the way (paths), for asserting that a sign-in or consent page was (not) shown. */
  pages: string[];
}

/**
 * The user agent: a cookie jar over real HTTP. `visit` follows redirects inside Tessera, signs in on the hosted
 * sign-in page when it appears (if `credentials` are set) and approves the consent page (if `consent` is "approve"),
 * and stops at the first redirect off the server (the relying party's callback) or the first page it does not handle.
 */
export class UserAgent {
  readonly cookies = new Map<string, string>();
  credentials: { email: string; password: string } | undefined;
  consent: "approve" | "deny" | "stop" = "approve";

  constructor(readonly issuer: string) {}

  private header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  private remember(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const eq = (pair ?? "").indexOf("=");
      const name = (pair ?? "").slice(0, eq).trim();
      const value = (pair ?? "").slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === "";
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const response = await fetch(new URL(url, this.issuer), {
      method: init.method ?? (init.form ? "POST" : "GET"),
      redirect: "manual",
      headers: {
        cookie: this.header(),
        ...(init.form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    });
    this.remember(response);
    return response;
  }

  async visit(start: string | URL, init: { method?: string; form?: Record<string, string> } = {}): Promise<Visit> {
    let response = await this.request(String(start), init);
    let url = new URL(String(start), this.issuer);
    const pages: string[] = [];
    for (let hop = 0; hop < 20; hop++) {
      if (response.status >= 300 && response.status < 400) {
        const next = new URL(response.headers.get("location") ?? "", url);
        await response.body?.cancel();
        if (next.origin !== this.issuer)
          return { status: response.status, url: url.href, body: "", redirectedTo: next, pages };
        url = next;
        response = await this.request(next.href);
        continue;
      }
      const body = await response.text();
      pages.push(url.pathname);
      if (
        response.status === 200 &&
        url.pathname === "/login" &&
        this.credentials &&
        body.includes('action="/login"')
      ) {
        const fields = { ...formFor(body, "/login"), ...this.credentials };
        url = new URL("/login", this.issuer);
        response = await this.request(url.href, { form: fields });
        continue;
      }
      if (response.status === 200 && body.includes('action="/authorize/consent"') && this.consent !== "stop") {
        const fields = { ...formFor(body, "/authorize/consent"), decision: this.consent };
        url = new URL("/authorize/consent", this.issuer);
        response = await this.request(url.href, { form: fields });
        continue;
      }
      return { status: response.status, url: url.href, body, redirectedTo: undefined, pages };
    }
    throw new Error("too many redirects");
  }
}

/** An authorization request as the suite builds one: PKCE (Tessera requires it), state and nonce. */
export async function authorizationUrl(
  c: Conformance,
  client: oauth.Client,
  params: Record<string, string | undefined> = {},
) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(c.as.authorization_endpoint as string);
  const all: Record<string, string | undefined> = {
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    response_type: "code",
    scope: "openid",
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    ...params,
  };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v);
  return { url, verifier, state: all.state, nonce: all.nonce };
}

/** The callback parameters after oauth4webapi's checks (state, iss); throws on an error response. */
export function callbackParams(c: Conformance, client: oauth.Client, visit: Visit, state: string | undefined) {
  expect(visit.redirectedTo?.href.startsWith(REDIRECT_URI), `expected a redirect to the RP, got ${visit.url}`).toBe(
    true,
  );
  return oauth.validateAuthResponse(c.as, client, visit.redirectedTo as URL, state ?? oauth.skipStateCheck);
}

/** RFC 6749 5.2 and 4.1.2.1: the characters allowed in `error` and `error_description`. */
const ERROR_FIELD = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * The error a callback carries (the suite's "expected error" checks), after oauth4webapi's state and iss checks and
 * the suite's generic checks on every authorization error response (performGenericAuthorizationEndpointErrorResponse
 * Validation): no code beside the error, error and error_description in RFC 6749's character set, and no parameter
 * beyond error, error_description, error_uri, state and iss (the suite only warns on that one).
 */
export function callbackError(c: Conformance, client: oauth.Client, visit: Visit, state: string | undefined) {
  try {
    callbackParams(c, client, visit, state);
  } catch (error) {
    if (error instanceof oauth.AuthorizationResponseError) {
      const params = (visit.redirectedTo as URL).searchParams;
      expect(params.has("code")).toBe(false);
      expect(params.get("error")).toMatch(ERROR_FIELD);
      if (params.has("error_description")) expect(params.get("error_description")).toMatch(ERROR_FIELD);
      const expected = ["error", "error_description", "error_uri", "state", "iss"];
      expect([...params.keys()].filter((k) => !expected.includes(k))).toEqual([]);
      return error;
    }
    throw error;
  }
  throw new Error("expected an error response at the redirect URI");
}

/**
 * A token endpoint error as the suite checks it (AbstractOIDCCAuthCodeReuse.checkResponse): 400, JSON, the expected
 * error, and error and error_description in RFC 6749 5.2's character set.
 */
export async function expectTokenError(response: Response, error: string) {
  expect(response.status).toBe(400);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  expect(body.error).toBe(error);
  expect(body.error).toMatch(ERROR_FIELD);
  if (body.error_description !== undefined) expect(body.error_description).toMatch(ERROR_FIELD);
}

/** Redeems a code with client_secret_basic (the suite's default) and validates the ID token (nonce included). */
export async function redeem(
  c: Conformance,
  client: oauth.Client,
  secret: string | undefined,
  params: URLSearchParams,
  verifier: string,
  nonce: string | undefined,
  auth?: oauth.ClientAuth,
) {
  const response = await oauth.authorizationCodeGrantRequest(
    c.as,
    client,
    auth ?? (secret === undefined ? oauth.None() : oauth.ClientSecretBasic(secret)),
    params,
    REDIRECT_URI,
    verifier,
    c.options,
  );
  return oauth.processAuthorizationCodeResponse(c.as, client, response, {
    expectedNonce: nonce ?? oauth.expectNoNonce,
    requireIdToken: true,
  });
}

/** Signs in (a full code flow) and returns the tokens, the ID token claims and the user agent. */
export async function signIn(
  c: Conformance,
  rp: { client: oauth.Client; secret?: string },
  agent: UserAgent,
  params: Record<string, string | undefined> = {},
) {
  const request = await authorizationUrl(c, rp.client, params);
  const visit = await agent.visit(request.url);
  const callback = callbackParams(c, rp.client, visit, request.state);
  const tokens = await redeem(c, rp.client, rp.secret, callback, request.verifier, request.nonce);
  const claims = oauth.getValidatedIdTokenClaims(tokens) as oauth.IDToken;
  return { tokens, claims, visit };
}

export { decode };
