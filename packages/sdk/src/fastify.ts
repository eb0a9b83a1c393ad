import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from "fastify";
import fp from "fastify-plugin";
import type { TesseraUser } from "./access-token.ts";
import { type AuthResult, createTessera, TesseraClient } from "./client.ts";
import { TesseraError } from "./errors.ts";
import type { TesseraOptions } from "./options.ts";

export { TesseraError } from "./errors.ts";

/**
 * Paths of the routes the plugin adds; `false` adds none (call the client yourself).
 *
 * @example
 * ```ts
 * await app.register(tesseraPlugin, { ...options, routes: { login: "/signin", logout: "/signout" } });
 * ```
 */
export interface TesseraRoutes {
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
    /** The SDK client: login/callback/logout/back-channel, `onSessionRevoked`, `authenticateUpgrade`. */
    tessera: TesseraClient;
  }
  interface FastifyContextConfig {
    /** `false` skips authentication for this route (the plugin's own routes use it). */
    tessera?: boolean;
  }
}

function send(reply: FastifyReply, error: TesseraError): FastifyReply {
  return reply.code(error.status).header("cache-control", "no-store").send(error.toJSON());
}

function apply(request: FastifyRequest, reply: FastifyReply, result: AuthResult): void {
  request.user = result.user;
  request.authError = result.error;
  if (result.setCookies.length > 0) {
    // The response carries a refresh token: no shared cache (CDN, proxy) may store it and hand it to someone else.
    // A route that sets its own Cache-Control afterwards replaces this; keep such routes' caching `private`.
    reply.header("set-cookie", result.setCookies as string[]).header("cache-control", "no-store");
  }
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
  if (request.user) return done();
  send(reply, request.authError ?? new TesseraError("UNAUTHENTICATED"));
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
    const user = request.user;
    if (!user) {
      send(reply, request.authError ?? new TesseraError("UNAUTHENTICATED"));
      return;
    }
    if (user.permissions.includes(permission) || user.roles.includes(permission)) return done();
    send(reply, new TesseraError("FORBIDDEN"));
  });
}

const plugin: FastifyPluginAsync<TesseraFastifyOptions> = async (app: FastifyInstance, options) => {
  const client = options.client instanceof TesseraClient ? options.client : createTessera(options as TesseraOptions);
  app.decorate("tessera", client);
  app.decorateRequest("user", null);
  app.decorateRequest("authError", null);

  // Synchronous on the common path (a cached or HMAC-checked access JWT): a callback-style hook with no promise keeps
  // the per-request cost to a cookie lookup and a Map lookup. `then` is the route's guard, when fused (see below).
  const authenticateThen = (then: GuardHook | undefined): GuardHook =>
    function tesseraAuthenticate(request, reply, done) {
      const headers = request.headers;
      const input = {
        cookieHeader: headers.cookie,
        authorization: headers.authorization,
        // A WebSocket upgrade cannot carry renewed cookies, so it never refreshes.
        allowRefresh: headers.upgrade === undefined,
        // Only upgrades are checked here: a WebSocket is not covered by SameSite between sites of one domain.
        origin: headers.upgrade === undefined ? undefined : (headers.origin ?? undefined),
      };
      const result = client.authenticateRequest(input);
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

  if (options.routes === false) return;
  const routes = {
    login: "/auth/login",
    callback: "/auth/callback",
    logout: "/auth/logout",
    backchannelLogout: "/auth/backchannel-logout",
    ...options.routes,
  };
  const skip = { tessera: false };

  app.get(routes.login, { config: skip }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    try {
      // `prompt=none`: a silent check for an existing Tessera session (an unknown value is ignored, not forwarded).
      const prompt = query.prompt === "none" || query.prompt === "login" ? query.prompt : undefined;
      const { url, setCookies } = await client.login({ returnTo: query.returnTo, ...(prompt ? { prompt } : {}) });
      return reply.header("set-cookie", setCookies).header("cache-control", "no-store").redirect(url, 302);
    } catch (error) {
      // Tessera unreachable or misconfigured: 503 ISSUER_UNAVAILABLE, not a bare 500.
      if (!(error instanceof TesseraError)) throw error;
      return send(reply, error);
    }
  });

  app.get(routes.callback, { config: skip }, async (request, reply) => {
    reply.header("cache-control", "no-store");
    try {
      const { returnTo, setCookies } = await client.callback({
        url: request.url,
        cookieHeader: request.headers.cookie,
      });
      return reply.header("set-cookie", setCookies).redirect(returnTo, 303);
    } catch (error) {
      if (!(error instanceof TesseraError)) throw error;
      reply.header("set-cookie", client.clearTransactionCookie());
      if (options.onCallbackError) return options.onCallbackError(error, request, reply);
      return send(reply, error);
    }
  });

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
    child.post(routes.logout, { config: skip }, async (request, reply) => {
      // CSRF: a page of another origin (e.g. another app on a sibling domain, which gets SameSite=Lax cookies) must
      // not sign the user out. Browsers send Origin on every form POST.
      if (!client.isAllowedOrigin(request.headers.origin)) return send(reply, new TesseraError("CROSS_ORIGIN_REQUEST"));
      const { url, setCookies } = await client.logout({ cookieHeader: request.headers.cookie });
      return reply.header("set-cookie", setCookies).header("cache-control", "no-store").redirect(url, 303);
    });

    child.post(routes.backchannelLogout, { config: skip }, async (request, reply) => {
      reply.header("cache-control", "no-store");
      const body = request.body as Record<string, unknown> | undefined;
      try {
        await client.handleBackchannelLogout({ logoutToken: body?.logout_token });
        return reply.code(200).send();
      } catch (error) {
        if (!(error instanceof TesseraError)) throw error;
        // Back-Channel Logout 1.0 §2.8: 400 with an OAuth-style error body.
        return reply.code(400).send({ error: "invalid_request", error_description: error.message });
      }
    });
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
