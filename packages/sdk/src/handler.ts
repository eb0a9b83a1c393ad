import type { TesseraUser } from "./access-token.ts";
import type { TesseraClient } from "./client.ts";
import { TesseraError } from "./errors.ts";
import type { AuthInput, AuthResult } from "./types.ts";

/**
 * The four routes the SDK answers itself.
 *
 * @example
 * ```ts
 * const route: RouteName | undefined = handler.match(req.method, path);
 * ```
 */
export type RouteName = "login" | "callback" | "logout" | "backchannelLogout";

/**
 * Paths of the routes the SDK answers; each defaults to `/auth/…` (see {@link DEFAULT_ROUTES}).
 *
 * @example
 * ```ts
 * const routes: RoutePaths = { login: "/signin", callback: "/oauth/callback" };
 * ```
 */
export interface RoutePaths {
  /**
   * GET, `?returnTo=/path`: redirects to Tessera. Default `/auth/login`. With `&prompt=none` it is a silent check:
   * a user signed in at Tessera comes back signed in, anyone else comes back to `returnTo` anonymous, with no page
   * shown; `&prompt=login` forces the password prompt.
   */
  login?: string;
  /** GET: the registered redirect URI's path. Default `/auth/callback`. */
  callback?: string;
  /** POST: signs out everywhere (RP-initiated logout). Default `/auth/logout`. */
  logout?: string;
  /** POST: the registered back-channel logout URI's path. Default `/auth/backchannel-logout`. */
  backchannelLogout?: string;
}

/**
 * The default route paths, and the method each route answers.
 *
 * @example
 * ```ts
 * DEFAULT_ROUTES.callback; // "/auth/callback"
 * ROUTE_METHODS.logout; // "POST"
 * ```
 */
export const DEFAULT_ROUTES: Readonly<Required<RoutePaths>> = Object.freeze({
  login: "/auth/login",
  callback: "/auth/callback",
  logout: "/auth/logout",
  backchannelLogout: "/auth/backchannel-logout",
});
/** See {@link DEFAULT_ROUTES}. */
export const ROUTE_METHODS: Readonly<Record<RouteName, "GET" | "POST">> = Object.freeze({
  login: "GET",
  callback: "GET",
  logout: "POST",
  backchannelLogout: "POST",
});

/**
 * A request as the handler needs it: the request target (path and query, as received), two headers, and for the
 * back-channel route the parsed form body.
 *
 * @example
 * ```ts
 * const request: HandlerRequest = { url: req.url, headers: { cookie: req.headers.cookie, origin: req.headers.origin } };
 * ```
 */
export interface HandlerRequest {
  url: string;
  /** `accept`: a browser (text/html) gets a failed callback as an HTML page, anything else as JSON. */
  headers: { cookie?: string | undefined; origin?: string | undefined; accept?: string | undefined };
  /** The `application/x-www-form-urlencoded` body, parsed (only the back-channel route reads it). */
  form?: Record<string, unknown> | undefined;
}

/**
 * What an adapter writes: the status, the headers (`set-cookie` is a list; append it to any the app set), and a JSON
 * body when `body` is defined. `error` is the {@link TesseraError} the answer reports, if any.
 *
 * @example
 * ```ts
 * const { status, headers, body } = await handler.handle("login", request);
 * res.writeHead(status, headers).end(body === undefined ? undefined : JSON.stringify(body));
 * ```
 */
export interface HandlerResponse {
  status: number;
  headers: Record<string, string | string[]>;
  /** A string (an HTML page, with its content-type) is sent as is; anything else as JSON. */
  body?: unknown;
  error?: TesseraError;
}

/**
 * The framework-neutral handler: the route table and the four routes. See {@link createHandler}.
 *
 * @example
 * ```ts
 * const route = handler.match("GET", "/auth/login"); // "login"
 * ```
 */
export interface TesseraHandler {
  /** The route paths in use, or undefined when the app answers no route itself (`routes: false`). */
  readonly routes: Readonly<Required<RoutePaths>> | undefined;
  /** Which SDK route a method and path (no query) name, if any. */
  match(method: string | undefined, path: string): RouteName | undefined;
  /** Answers one route. A {@link TesseraError} becomes its documented answer; any other error is rethrown. */
  handle(route: RouteName, request: HandlerRequest): Promise<HandlerResponse>;
}

const JSON_TYPE = "application/json; charset=utf-8";

/**
 * The `{ code, message }` answer of a {@link TesseraError}, never cacheable.
 *
 * @example
 * ```ts
 * const { status, headers, body } = errorResponse(new TesseraError("FORBIDDEN")); // 403
 * ```
 */
export function errorResponse(error: TesseraError): HandlerResponse {
  return {
    status: error.status,
    headers: { "content-type": JSON_TYPE, "cache-control": "no-store" },
    body: error.toJSON(),
    error,
  };
}

function redirect(status: 302 | 303, location: string, setCookies: string[]): HandlerResponse {
  return { status, headers: { location, "set-cookie": setCookies, "cache-control": "no-store" } };
}

/** One value of a query parameter; absent or repeated is undefined. */
function single(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  return values.length === 1 ? values[0] : undefined;
}

/**
 * Creates the framework-neutral handler the Fastify plugin and the Node middleware translate. Use it to integrate
 * another framework: match the route, build a {@link HandlerRequest}, write the {@link HandlerResponse}.
 *
 * @example
 * ```ts
 * const handler = createHandler(tessera);
 * const route = handler.match(req.method, path);
 * if (route) {
 *   const { status, headers, body } = await handler.handle(route, { url: req.url, headers: req.headers, form });
 *   return reply(status, headers, body);
 * }
 * ```
 */
export function createHandler(client: TesseraClient, options: { routes?: RoutePaths | false } = {}): TesseraHandler {
  const routes = options.routes === false ? undefined : Object.freeze({ ...DEFAULT_ROUTES, ...options.routes });
  const answer: Record<RouteName, (request: HandlerRequest) => Promise<HandlerResponse>> = {
    async login(request): Promise<HandlerResponse> {
      const query = new URL(request.url, "http://login.invalid").searchParams;
      // `prompt=none`: a silent check for an existing Tessera session (an unknown value is ignored, not forwarded).
      const prompt = single(query, "prompt");
      const { url, setCookies } = await client.login({
        returnTo: single(query, "returnTo"),
        ...(prompt === "none" || prompt === "login" ? { prompt } : {}),
      });
      return redirect(302, url, setCookies);
    },
    async callback(request): Promise<HandlerResponse> {
      try {
        const { returnTo, setCookies } = await client.callback({
          url: request.url,
          cookieHeader: request.headers.cookie,
        });
        return redirect(303, returnTo, setCookies);
      } catch (error) {
        if (!(error instanceof TesseraError)) throw error;
        // The transaction is spent whatever went wrong: a retry starts a fresh sign-in. A browser (Accept: text/html,
        // as every navigation sends) gets a readable page with the stable code, not JSON.
        const response = (request.headers.accept ?? "").includes("text/html")
          ? {
              status: error.status,
              headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } as Record<
                string,
                string | string[]
              >,
              body: client.errorPage(error, routes?.login ?? DEFAULT_ROUTES.login),
              error,
            }
          : errorResponse(error);
        response.headers["set-cookie"] = [client.clearTransactionCookie()];
        return response;
      }
    },
    async logout(request): Promise<HandlerResponse> {
      // CSRF: a page of another origin (e.g. another app on a sibling domain, which gets SameSite=Lax cookies) must
      // not sign the user out. Browsers send Origin on every form POST.
      if (!client.isAllowedOrigin(request.headers.origin))
        return errorResponse(new TesseraError("CROSS_ORIGIN_REQUEST"));
      const { url, setCookies } = await client.logout({ cookieHeader: request.headers.cookie });
      return redirect(303, url, setCookies);
    },
    async backchannelLogout(request): Promise<HandlerResponse> {
      try {
        await client.handleBackchannelLogout({ logoutToken: request.form?.logout_token });
        return { status: 200, headers: { "cache-control": "no-store" } };
      } catch (error) {
        if (!(error instanceof TesseraError)) throw error;
        // Back-Channel Logout 1.0 §2.8: 400 with an OAuth-style error body.
        const body = { error: "invalid_request", error_description: error.message };
        return { status: 400, headers: { "content-type": JSON_TYPE, "cache-control": "no-store" }, body, error };
      }
    },
  };
  return {
    routes,
    match(method, path) {
      if (!routes) return undefined;
      for (const route of Object.keys(ROUTE_METHODS) as RouteName[]) {
        if (routes[route] === path && ROUTE_METHODS[route] === (method ?? "GET")) return route;
      }
      return undefined;
    },
    async handle(route, request) {
      try {
        return await answer[route](request);
      } catch (error) {
        // Tessera unreachable at sign-in (ISSUER_UNAVAILABLE, 503) and the like: the documented code, not a bare 500.
        if (error instanceof TesseraError) return errorResponse(error);
        throw error;
      }
    },
  };
}

/**
 * The {@link AuthInput} of a request from its headers. A WebSocket upgrade (an `upgrade` header) never refreshes (a
 * 101 cannot carry renewed cookies) and has its `Origin` checked: SameSite does not cover a WebSocket opened by
 * another site of the same domain. An ordinary request is not affected by `Origin`.
 *
 * @example
 * ```ts
 * const result = await tessera.authenticate(authInputFrom(req.headers));
 * ```
 */
export function authInputFrom(headers: Readonly<Record<string, string | string[] | undefined>>): AuthInput {
  const { cookie, authorization, upgrade, origin } = headers;
  const isUpgrade = upgrade !== undefined;
  return {
    cookieHeader: typeof cookie === "string" ? cookie : undefined,
    authorization: typeof authorization === "string" ? authorization : undefined,
    allowRefresh: !isUpgrade,
    // A repeated Origin header is no origin of ours.
    origin: !isUpgrade ? undefined : typeof origin === "string" ? origin : Array.isArray(origin) ? "null" : undefined,
  };
}

/**
 * The headers a response must carry after {@link TesseraClient.authenticate}, or undefined when none: renewed or
 * cleared cookies, and `Cache-Control: no-store` with them (the response carries a refresh token: no shared cache
 * may store it; a route that sets its own Cache-Control afterwards replaces this, so keep such routes `private`).
 *
 * @example
 * ```ts
 * const extra = authHeaders(result);
 * if (extra) for (const [name, value] of Object.entries(extra)) res.setHeader(name, value);
 * ```
 */
export function authHeaders(result: AuthResult): { "set-cookie": string[]; "cache-control": string } | undefined {
  if (result.setCookies.length === 0) return undefined;
  return { "set-cookie": result.setCookies as string[], "cache-control": "no-store" };
}

/**
 * A guard's decision: undefined lets the request through; otherwise the answer to send, 401 with the reason the
 * request is anonymous (`authError`, else UNAUTHENTICATED), or 403 FORBIDDEN when `permission` is given and the user
 * has it neither among `permissions` nor `roles`.
 *
 * @example
 * ```ts
 * const refusal = checkAccess(req.user, req.authError, "refunds:create");
 * if (refusal) return send(refusal);
 * ```
 */
export function checkAccess(
  user: TesseraUser | null | undefined,
  authError: TesseraError | null | undefined,
  permission?: string,
): HandlerResponse | undefined {
  if (!user) return errorResponse(authError ?? new TesseraError("UNAUTHENTICATED"));
  if (permission === undefined || user.permissions.includes(permission) || user.roles.includes(permission)) {
    return undefined;
  }
  return errorResponse(new TesseraError("FORBIDDEN"));
}
