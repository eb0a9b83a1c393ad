import type { FastifyInstance } from "fastify";
import * as oauth from "oauth4webapi";
import { sessionCookieName } from "../../src/http/session.ts";
import type { UserRow } from "../../src/libraries/sessions.ts";
import { Browser } from "../accounts/helpers.ts";
import { sessionCookie } from "../oauth/helpers.ts";

export const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/**
 * oauth4webapi's requests go through `inject()` (its `customFetch` hook): the library builds and reads real HTTP
 * requests and responses; only the socket is skipped.
 */
export function injectFetch(app: FastifyInstance): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const body = init?.body === undefined || init.body === null ? undefined : String(init.body);
    const response = await app.inject({
      method: (init?.method ?? "GET") as "GET" | "POST",
      url: url.pathname + url.search,
      headers,
      ...(body !== undefined ? { payload: body } : {}),
    });
    return new Response(response.statusCode === 204 ? null : response.body, {
      status: response.statusCode,
      headers: Object.entries(response.headers).flatMap(([k, v]) =>
        v === undefined ? [] : (Array.isArray(v) ? v : [String(v)]).map((x) => [k, x] as [string, string]),
      ),
    });
  }) as typeof fetch;
}

/** The authorization server's metadata as oauth4webapi reads it from discovery. */
export async function discover(app: FastifyInstance) {
  const issuer = new URL(app.ctx.config.issuer);
  const options = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, options));
  return { as, options };
}

/** A browser (cookie jar over inject) signed in as the user. */
export async function signedInBrowser(app: FastifyInstance, user: UserRow): Promise<Browser> {
  const browser = new Browser(app);
  const { cookie } = await sessionCookie(app, user);
  browser.cookies.set(sessionCookieName(app.ctx.config), cookie.slice(cookie.indexOf("=") + 1));
  return browser;
}
