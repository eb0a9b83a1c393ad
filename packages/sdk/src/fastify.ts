import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from "fastify";
import fp from "fastify-plugin";
import type { TesseraUser } from "./access-token.ts";
import { createTessera, TesseraClient } from "./client.ts";
import type { TesseraError } from "./errors.ts";
import {
  authHeaders,
  authInputFrom,
  checkAccess,
  createHandler,
  type HandlerResponse,
  type RouteName,
  type RoutePaths,
} from "./handler.ts";
import type { TesseraOptions } from "./options.ts";
import type { AuthResult } from "./types.ts";

export { TesseraError } from "./errors.ts";

/**
 * Paths of the routes the plugin adds; `false` adds none (call the client yourself). See {@link RoutePaths}.
 *
 * @example
 * ```ts
 * await app.register(tesseraPlugin, { ...options, routes: { login: "/signin", logout: "/signout" } });
 * ```
 */
export type TesseraRoutes = RoutePaths;

/**
 * Options of the Fastify plugin: either a ready {@link TesseraClient} (`client`) or the options to create one.
 *
 * @example
 * ```ts
 * const tessera = createTessera(options);
 * tessera.onSessionRevoked(closeSockets);
 * await app.register(tesseraPlugin, { client: tessera, routes: { callback: "/oauth/callback" } });
 * ```
 */
export type TesseraFastifyOptions = ({ client: TesseraClient } | (TesseraOptions & { client?: undefined })) & {
  routes?: TesseraRoutes | false;
  /**
   * Renders a failed sign-in callback (state mismatch, denied, ...). Default: the status and `{ code, message }` JSON.
   */
  onCallbackError?: (error: TesseraError, request: FastifyRequest, reply: FastifyReply) => unknown;
};

declare module "fastify" {
  interface FastifyRequest {
    /** The signed-in user, or null. Set on every request before handlers run. */
    user: TesseraUser | null;
    /** Why `user` is null (UNAUTHENTICATED, ACCESS_TOKEN_EXPIRED, SESSION_REVOKED, ...), or null. */
    authError: TesseraError | null;
  }
  interface FastifyInstance {
    /** The SDK client: login/callback/logout/back-channel, `authenticate`, `onSessionRevoked`. */
    tessera: TesseraClient;
  }
  interface FastifyContextConfig {
    /** `false` skips authentication for this route (the plugin's own routes use it). */
    tessera?: boolean;
  }
}

/**
 * Writes a neutral answer: `set-cookie` is appended to any the route set (a lone value as a string, the same header on
 * the wire either way), and a JSON body is serialised by Fastify.
 */
function send(reply: FastifyReply, response: HandlerResponse): FastifyReply {
  setHeaders(reply, response.headers);
  return reply.code(response.status).send(response.body);
}

function setHeaders(reply: FastifyReply, headers: HandlerResponse["headers"]): FastifyReply {
  for (const [name, value] of Object.entries(headers)) {
    reply.header(name, Array.isArray(value) && value.length === 1 ? value[0] : value);
  }
  return reply;
}

/**
 * A route hook usable as `onRequest` (recommended) or `preHandler`.
 *
 * @example
 * ```ts
 * const adminOnly: GuardHook = requirePermission("admin");
 * app.get("/admin", { onRequest: adminOnly }, adminPage);
 * ```
 */
export type GuardHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

/** Marks the SDK's guards, so the plugin can fuse a route's first `onRequest` guard with its authentication hook. */
const GUARD = Symbol("tessera.guard");
function guard(hook: GuardHook): GuardHook {
  return Object.assign(hook, { [GUARD]: true });
}
function isGuard(hook: unknown): hook is GuardHook {
  return typeof hook === "function" && (hook as { [GUARD]?: boolean })[GUARD] === true;
}

/**
 * A route guard: answers 401 `{ code, message }` unless the request has a signed-in user. Use it as `onRequest`: it
 * then runs right after the plugin's authentication, before the body is even parsed (and it is the cheapest place).
 *
 * @example
 * ```ts
 * app.get("/api/orders", { onRequest: requireUser }, async (request) => listOrders(request.user!.id));
 * ```
 */
export const requireUser: GuardHook = guard(function requireUser(request, reply, done) {
  const refusal = checkAccess(request.user, request.authError);
  if (refusal) send(reply, refusal);
  else done();
});

/**
 * A route guard: 401 without a user, 403 `FORBIDDEN` unless the user has `permission` among the `permissions` (or
 * `roles`) claims Tessera returned.
 *
 * @example
 * ```ts
 * app.delete("/api/products/:id", { onRequest: requirePermission("products:write") }, deleteProduct);
 * ```
 */
export function requirePermission(permission: string): GuardHook {
  return guard(function requirePermissionHook(request, reply, done) {
    const refusal = checkAccess(request.user, request.authError, permission);
    if (refusal) send(reply, refusal);
    else done();
  });
}

const plugin: FastifyPluginAsync<TesseraFastifyOptions> = async (app: FastifyInstance, options) => {
  const client = options.client instanceof TesseraClient ? options.client : createTessera(options as TesseraOptions);
  app.decorate("tessera", client);
  app.decorateRequest("user", null);
  app.decorateRequest("authError", null);

  const apply = (request: FastifyRequest, reply: FastifyReply, result: AuthResult): void => {
    request.user = result.user;
    request.authError = result.error;
    const headers = authHeaders(result);
    if (headers) reply.headers(headers);
  };
  // Synchronous on the common path (a cached or HMAC-checked access JWT): a callback-style hook with no promise keeps
  // the per-request cost to a cookie lookup and a Map lookup. `then` is the route's guard, when fused (see below).
  const authenticateThen = (then: GuardHook | undefined): GuardHook =>
    function tesseraAuthenticate(request, reply, done) {
      const result = client.authenticate(authInputFrom(request.headers));
      if (!(result instanceof Promise)) {
        apply(request, reply, result);
        return then ? then(request, reply, done) : done();
      }
      result.then((resolved) => {
        apply(request, reply, resolved);
        if (then) then(request, reply, done);
        else done();
      }, done);
    };
  const authenticate = authenticateThen(undefined);
  // Attached to each route as it is registered (so: register this plugin before your routes), rather than as one
  // global hook that checks the route's config on every request: Fastify's request.routeOptions getter builds an
  // object per call, which alone cost a few percent of a small route's throughput in bench/. When the route's first
  // onRequest hook is requireUser/requirePermission, the two run as one hook (one fewer hook call per request).
  app.addHook("onRoute", (route) => {
    if (route.config?.tessera === false) return;
    const hooks = route.onRequest === undefined ? [] : [route.onRequest].flat();
    const first = hooks[0];
    route.onRequest = isGuard(first) ? [authenticateThen(first), ...hooks.slice(1)] : [authenticate, ...hooks];
  });

  const handler = createHandler(client, { routes: options.routes });
  if (!handler.routes) return;
  const routes = handler.routes;
  const answer = (route: RouteName) => async (request: FastifyRequest, reply: FastifyReply) => {
    const form = route === "backchannelLogout" ? (request.body as Record<string, unknown> | undefined) : undefined;
    const response = await handler.handle(route, { url: request.url, headers: request.headers, form });
    if (route === "callback" && response.error && options.onCallbackError) {
      const { "content-type": _json, ...headers } = response.headers;
      return options.onCallbackError(response.error, request, setHeaders(reply, headers));
    }
    return send(reply, response);
  };
  const skip = { tessera: false };
  app.get(routes.login, { config: skip }, answer("login"));
  app.get(routes.callback, { config: skip }, answer("callback"));
  // Tessera POSTs the logout token form-encoded, and a sign-out button is an HTML form: both routes get a form parser
  // in an encapsulated context, so the app's own body parsers (or none) stay as they are.
  await app.register(async (child) => {
    if (!child.hasContentTypeParser("application/x-www-form-urlencoded")) {
      child.addContentTypeParser(
        "application/x-www-form-urlencoded",
        { parseAs: "string", bodyLimit: 64 * 1024 },
        (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
      );
    }
    child.post(routes.logout, { config: skip }, answer("logout"));
    child.post(routes.backchannelLogout, { config: skip }, answer("backchannelLogout"));
  });
};

/**
 * The Fastify plugin: decorates every request with `request.user` (refreshing expired access JWTs transparently),
 * adds `/auth/login`, `/auth/callback`, `/auth/logout` and `/auth/backchannel-logout`, and exposes the client as
 * `app.tessera`. Guard routes with {@link requireUser} / {@link requirePermission}.
 *
 * @example
 * ```ts
 * import Fastify from "fastify";
 * import { requireUser, tesseraPlugin } from "@tessera/sdk/fastify";
 *
 * const app = Fastify();
 * await app.register(tesseraPlugin, {
 *   issuer: "https://id.example.com",
 *   clientId: process.env.TESSERA_CLIENT_ID!,
 *   clientSecret: process.env.TESSERA_CLIENT_SECRET!,
 *   appSecret: process.env.APP_SECRET!,
 *   redirectUri: "https://shop.example.com/auth/callback",
 *   cookies: { secure: true, prefix: "shop" },
 * });
 * app.get("/me", { onRequest: requireUser }, async (request) => request.user);
 * ```
 */
export const tesseraPlugin = fp(plugin, { fastify: "5.x", name: "@tessera/sdk" });
