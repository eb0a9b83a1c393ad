import type { IncomingMessage, ServerResponse } from "node:http";
import type { TesseraUser } from "./access-token.ts";
import type { AuthResult, TesseraClient } from "./client.ts";
import { TesseraError } from "./errors.ts";

export { TesseraError } from "./errors.ts";

/**
 * A Node request as the middleware leaves it: `user` and `authError` set (Express's `req` fits).
 *
 * @example
 * ```ts
 * createServer((req: TesseraRequest, res) => auth(req, res, () => res.end(req.user?.email ?? "anonymous")));
 * ```
 */
export interface TesseraRequest extends IncomingMessage {
  user?: TesseraUser | null;
  authError?: TesseraError | null;
  /** If a body parser already ran (Express `urlencoded()`), the back-channel route reads it from here. */
  body?: unknown;
}

/**
 * `next` of Express/Connect-style middleware.
 *
 * @example
 * ```ts
 * const next: NextFunction = (error) => (error ? res.writeHead(500).end() : handle(req, res));
 * auth(req, res, next);
 * ```
 */
export type NextFunction = (error?: unknown) => void;

/**
 * Paths the middleware answers itself; `false` answers none.
 *
 * @example
 * ```ts
 * tesseraMiddleware(tessera, { routes: { login: "/signin", callback: "/oauth/callback" } });
 * ```
 */
export interface NodeRoutes {
  login?: string;
  callback?: string;
  logout?: string;
  backchannelLogout?: string;
}

const MAX_BODY_BYTES = 64 * 1024;

function appendSetCookie(res: ServerResponse, values: readonly string[]): void {
  if (values.length === 0) return;
  const existing = res.getHeader("set-cookie");
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  res.setHeader("set-cookie", [...list, ...values]);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json; charset=utf-8");
  res.setHeader("cache-control", "no-store");
  res.end(JSON.stringify(body));
}

function redirect(res: ServerResponse, status: 302 | 303, location: string): void {
  res.statusCode = status;
  res.setHeader("location", location);
  res.setHeader("cache-control", "no-store");
  res.end();
}

async function readForm(req: TesseraRequest): Promise<Record<string, unknown>> {
  if (req.body && typeof req.body === "object") return req.body as Record<string, unknown>;
  const type = req.headers["content-type"] ?? "";
  if (!type.startsWith("application/x-www-form-urlencoded")) return {};
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return {};
    chunks.push(chunk as Buffer);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
}

/**
 * Express/Connect-style middleware for plain `node:http` servers and Express: sets `req.user` / `req.authError` on
 * every request (refreshing expired access JWTs and appending the renewed Set-Cookie headers), and answers the
 * login, callback, logout and back-channel logout routes itself.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { createTessera } from "@tessera/sdk";
 * import { tesseraMiddleware } from "@tessera/sdk/node";
 *
 * const tessera = createTessera({ issuer, clientId, clientSecret, appSecret, redirectUri, cookies: { secure: true } });
 * const auth = tesseraMiddleware(tessera);
 * createServer((req, res) =>
 *   auth(req, res, () => res.end(req.user ? `Hello ${req.user.name}` : "Signed out")),
 * ).listen(4000);
 * ```
 */
export function tesseraMiddleware(
  client: TesseraClient,
  options: { routes?: NodeRoutes | false } = {},
): (req: TesseraRequest, res: ServerResponse, next: NextFunction) => void {
  const routes =
    options.routes === false
      ? undefined
      : {
          login: "/auth/login",
          callback: "/auth/callback",
          logout: "/auth/logout",
          backchannelLogout: "/auth/backchannel-logout",
          ...options.routes,
        };

  const handleRoute = async (req: TesseraRequest, res: ServerResponse, path: string): Promise<boolean> => {
    if (!routes) return false;
    const method = req.method ?? "GET";
    if (path === routes.login && method === "GET") {
      const query = new URL(req.url ?? "/", "http://x").searchParams;
      const prompt = query.get("prompt");
      const { url, setCookies } = await client.login({
        returnTo: query.get("returnTo") ?? undefined,
        ...(prompt === "none" || prompt === "login" ? { prompt } : {}),
      });
      appendSetCookie(res, setCookies);
      redirect(res, 302, url);
      return true;
    }
    if (path === routes.callback && method === "GET") {
      try {
        const result = await client.callback({ url: req.url ?? "/", cookieHeader: req.headers.cookie });
        appendSetCookie(res, result.setCookies);
        redirect(res, 303, result.returnTo);
      } catch (error) {
        if (!(error instanceof TesseraError)) throw error;
        appendSetCookie(res, [client.clearTransactionCookie()]);
        sendJson(res, error.status, error.toJSON());
      }
      return true;
    }
    if (path === routes.logout && method === "POST") {
      if (!client.isAllowedOrigin(req.headers.origin)) {
        const error = new TesseraError("CROSS_ORIGIN_REQUEST");
        sendJson(res, error.status, error.toJSON());
        return true;
      }
      const { url, setCookies } = await client.logout({ cookieHeader: req.headers.cookie });
      appendSetCookie(res, setCookies);
      redirect(res, 303, url);
      return true;
    }
    if (path === routes.backchannelLogout && method === "POST") {
      const form = await readForm(req);
      try {
        await client.handleBackchannelLogout({ logoutToken: form.logout_token });
        res.statusCode = 200;
        res.setHeader("cache-control", "no-store");
        res.end();
      } catch (error) {
        if (!(error instanceof TesseraError)) throw error;
        sendJson(res, 400, { error: "invalid_request", error_description: error.message });
      }
      return true;
    }
    return false;
  };

  const apply = (req: TesseraRequest, res: ServerResponse, result: AuthResult) => {
    req.user = result.user;
    req.authError = result.error;
    if (result.setCookies.length === 0) return;
    appendSetCookie(res, result.setCookies);
    // The response carries a refresh token: no shared cache may store it (a later Cache-Control replaces this).
    res.setHeader("cache-control", "no-store");
  };

  return (req, res, next) => {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    const isRoute =
      routes !== undefined &&
      (path === routes.login ||
        path === routes.callback ||
        path === routes.logout ||
        path === routes.backchannelLogout);
    if (isRoute) {
      handleRoute(req, res, path).then(
        (handled) => (handled ? undefined : next()),
        (error: unknown) => {
          // Tessera unreachable at sign-in (ISSUER_UNAVAILABLE, 503) and the like: the documented code, as the
          // Fastify plugin answers, instead of whatever the app's error handler makes of it (often a bare 500).
          if (error instanceof TesseraError && !res.headersSent) sendJson(res, error.status, error.toJSON());
          else next(error);
        },
      );
      return;
    }
    const input = {
      cookieHeader: req.headers.cookie,
      authorization: req.headers.authorization,
      allowRefresh: req.headers.upgrade === undefined,
      origin: req.headers.upgrade === undefined ? undefined : req.headers.origin,
    };
    const result = client.authenticateRequest(input);
    if (!(result instanceof Promise)) {
      apply(req, res, result);
      next();
      return;
    }
    result.then((resolved) => {
      apply(req, res, resolved);
      next();
    }, next);
  };
}

/**
 * Express/Connect-style guard: 401 `{ code, message }` unless `tesseraMiddleware` found a signed-in user.
 *
 * @example
 * ```ts
 * app.use(tesseraMiddleware(tessera));
 * app.get("/api/me", requireUser, (req, res) => res.json(req.user));
 * ```
 */
export function requireUser(req: TesseraRequest, res: ServerResponse, next: NextFunction): void {
  if (req.user) {
    next();
    return;
  }
  const error = req.authError ?? new TesseraError("UNAUTHENTICATED");
  sendJson(res, error.status, error.toJSON());
}

/**
 * Express/Connect-style guard: 401 without a user, 403 FORBIDDEN unless the user has `permission` (in the
 * `permissions` or `roles` claims).
 *
 * @example
 * ```ts
 * app.post("/admin/refunds", requirePermission("refunds:create"), createRefund);
 * ```
 */
export function requirePermission(
  permission: string,
): (req: TesseraRequest, res: ServerResponse, next: NextFunction) => void {
  return (req, res, next) => {
    if (!req.user) {
      requireUser(req, res, next);
      return;
    }
    if (req.user.permissions.includes(permission) || req.user.roles.includes(permission)) {
      next();
      return;
    }
    const error = new TesseraError("FORBIDDEN");
    sendJson(res, error.status, error.toJSON());
  };
}
