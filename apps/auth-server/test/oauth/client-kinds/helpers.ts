import type { FastifyInstance } from "fastify";
import * as oauth from "oauth4webapi";
import { type ClientInput, createPublicClient } from "../../../src/libraries/clients/index.ts";

export const ISSUER = "http://localhost:3000";

/**
 * fetch for oauth4webapi (a third-party OAuth client) that reaches the app through inject(): the library builds and
 * parses real HTTP requests and responses; only the socket is skipped. Responses are real `Response` objects.
 */
export function injectFetch(app: FastifyInstance) {
  return async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = url instanceof Request ? url : new Request(url, init);
    const target = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      headers[key] = value;
    });
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const response = await app.inject({
      method: request.method as "GET",
      url: `${target.pathname}${target.search}`,
      headers,
      ...(body ? { payload: body } : {}),
    });
    const out = new Headers();
    for (const [k, v] of Object.entries(response.headers)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [String(v)]) out.append(k, one);
    }
    return new Response(response.statusCode === 204 ? null : response.rawPayload, {
      status: response.statusCode,
      headers: out,
    });
  };
}

/** oauth4webapi options that route its requests to the app (http issuer allowed: tests only). */
export function libOptions(app: FastifyInstance) {
  return { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true } as const;
}

export async function discover(app: FastifyInstance): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(ISSUER);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, libOptions(app)));
}

export async function registerPublicClient(app: FastifyInstance, input: Partial<ClientInput> = {}) {
  const { client } = await createPublicClient(app.ctx, {
    name: "Game",
    redirectUris: ["http://127.0.0.1/callback"],
    firstParty: true,
    ...input,
  });
  return client;
}
