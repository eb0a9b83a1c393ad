import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { TesseraUser } from "./access-token.ts";
import type { TesseraClient } from "./client.ts";
import { TesseraError } from "./errors.ts";
import {
  authHeaders,
  authInputFrom,
  checkAccess,
  createHandler,
  errorResponse,
  type HandlerResponse,
  type RoutePaths,
} from "./handler.ts";
import type { AuthResult } from "./types.ts";

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
 * Paths the middleware answers itself; `false` answers none. See {@link RoutePaths}.
 *
 * @example
 * ```ts
 * tesseraMiddleware(tessera, { routes: { login: "/signin", callback: "/oauth/callback" } });
 * ```
 */
export type NodeRoutes = RoutePaths;

const MAX_BODY_BYTES = 64 * 1024;

/** Writes a neutral answer; `set-cookie` values are appended to any the app already set. */
function send(res: ServerResponse, response: HandlerResponse): void {
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) {
    if (name === "set-cookie") appendSetCookie(res, value as string[]);
    else res.setHeader(name, value);
  }
  const { body } = response;
  res.end(body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body));
}

function appendSetCookie(res: ServerResponse, values: readonly string[]): void {
  if (values.length === 0) return;
  const existing = res.getHeader("set-cookie");
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  res.setHeader("set-cookie", [...list, ...values]);
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
  const handler = createHandler(client, { routes: options.routes });
  const apply = (req: TesseraRequest, res: ServerResponse, result: AuthResult) => {
    req.user = result.user;
    req.authError = result.error;
    const headers = authHeaders(result);
    if (!headers) return;
    appendSetCookie(res, headers["set-cookie"]);
    res.setHeader("cache-control", headers["cache-control"]);
  };

  return (req, res, next) => {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const route = handler.match(req.method, query === -1 ? url : url.slice(0, query));
    if (route) {
      const form = route === "backchannelLogout" ? readForm(req) : Promise.resolve(undefined);
      // Anything but a TesseraError (answered by the handler) goes to the app's error handler, never unhandled.
      form
        .then((body) => handler.handle(route, { url, headers: req.headers, form: body }))
        .then((response) => send(res, response))
        .catch(next);
      return;
    }
    const result = client.authenticate(authInputFrom(req.headers));
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
  const refusal = checkAccess(req.user, req.authError);
  if (refusal) send(res, refusal);
  else next();
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
    const refusal = checkAccess(req.user, req.authError, permission);
    if (refusal) send(res, refusal);
    else next();
  };
}

/**
 * The guard for a WebSocket upgrade on a Node server (`server.on("upgrade")`, e.g. with `ws`): resolves the signed-in
 * user, or refuses the upgrade itself and resolves null. A refusal is written on the socket as a plain HTTP answer
 * (401 anonymous / expired / revoked, 403 CROSS_ORIGIN_REQUEST, 503 SESSION_CHECK_FAILED, with the `{ code, message }`
 * body) and the socket is closed, so an anonymous upgrade never reaches the app's WebSocket code even when the app
 * forgets its `if (!user) return`. Cookies or `Authorization: Bearer`; it never refreshes (a 101 cannot carry renewed
 * cookies: after ACCESS_TOKEN_EXPIRED the page makes one ordinary request, then reconnects). Never rejects.
 *
 * @example
 * ```ts
 * server.on("upgrade", async (req, socket, head) => {
 *   const user = await authenticateUpgrade(tessera, req, socket);
 *   if (!user) return; // already answered 401/403/503 and closed
 *   wss.handleUpgrade(req, socket, head, (ws) => ws.send(`hello ${user.name}`));
 * });
 * ```
 */
export async function authenticateUpgrade(
  client: TesseraClient,
  req: IncomingMessage,
  socket: Duplex,
): Promise<TesseraUser | null> {
  // The upgrade header is what makes authInputFrom refuse to refresh and check Origin; a request routed here is one.
  const result = await client.authenticate(
    authInputFrom({ ...req.headers, upgrade: req.headers.upgrade ?? "websocket" }),
  );
  if (result.user) return result.user;
  refuseUpgrade(socket, result.error);
  return null;
}

function refuseUpgrade(socket: Duplex, error: TesseraError | null): void {
  const { status, headers, body } = errorResponse(error ?? new TesseraError("UNAUTHENTICATED"));
  const json = JSON.stringify(body);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push(`content-length: ${Buffer.byteLength(json)}`, "connection: close");
  // A client that hangs up first must not crash the process with an unhandled 'error'.
  socket.on("error", () => undefined);
  socket.end(`${lines.join("\r\n")}\r\n\r\n${json}`);
}
