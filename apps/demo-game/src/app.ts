import websocket, { type WebSocket } from "@fastify/websocket";
import { TesseraError } from "@tessera/sdk";
import { requirePermission, requireUser, tesseraPlugin } from "@tessera/sdk/fastify";
import Fastify, { type FastifyInstance } from "fastify";

/**
 * Tessera's signed webhooks (roles or entitlements changed, session ended, user deleted). The SDK verifies the
 * signature over the RAW body, so this scope keeps JSON bodies as bytes. The SDK reacts by itself: a changed role makes
 * the player's next request refresh its claims; an ended session is revoked here.
 */
async function webhookRoute(app: FastifyInstance): Promise<void> {
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: 64 * 1024 }, (_request, body, done) =>
    done(null, body),
  );
  app.post("/webhooks/tessera", { config: { tessera: false } }, async (request, reply) => {
    try {
      await app.tessera.webhooks.verify({ headers: request.headers, body: request.body as Buffer });
    } catch (error) {
      // Already handled (Tessera retried after a lost answer): acknowledge so it stops.
      if (!(error instanceof TesseraError) || error.code !== "WEBHOOK_REPLAYED") throw error;
    }
    return reply.code(204).send();
  });
}

/** What the game needs to run as a Tessera client. */
export interface DemoGameOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The game's own secret (≥ 32 bytes) for its access JWTs. */
  appSecret: string;
  /** Where the game is reachable, e.g. http://localhost:4002. */
  publicUrl: string;
  /** The shop's URL, for the cross-app link. */
  shopUrl?: string;
  secureCookies?: boolean;
  logger?: boolean;
  /** The SDK's clock in epoch milliseconds (tests move it to make access JWTs expire). Default `Date.now`. */
  now?: () => number;
  /** The client's webhook signing secret (`whsec_…`); enables POST /webhooks/tessera. */
  webhookSecret?: string;
}

/** Close code sent when the player's Tessera session ended (application range 4000-4999). */
export const SESSION_ENDED_CLOSE_CODE = 4001;

interface Player {
  name: string;
  score: number;
  sockets: Set<WebSocket>;
}

const escapeHtml = (value: string) =>
  value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

/** The page's script, served as a file so the CSP can forbid inline scripts. */
const CLIENT_JS = `
const status = document.querySelector('[data-testid="socket-status"]');
const board = document.querySelector('[data-testid="scoreboard"]');
const target = document.querySelector('[data-testid="target"]');
async function connect() {
  // An ordinary request first: it renews the access cookie if it expired (an upgrade cannot).
  const me = await fetch('/api/me', { credentials: 'same-origin' });
  if (!me.ok) { status.textContent = 'signed out'; return; }
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
  ws.onopen = () => { status.textContent = 'connected'; target.disabled = false; };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'welcome') status.textContent = 'connected as ' + message.name;
    if (message.type === 'scores') {
      board.replaceChildren(...message.players.map((p) => {
        const li = document.createElement('li'); li.textContent = p.name + ': ' + p.score; return li;
      }));
    }
  };
  ws.onclose = (event) => {
    target.disabled = true;
    status.textContent = event.code === ${SESSION_ENDED_CLOSE_CODE} ? 'closed: session ended' : 'closed (' + event.code + ')';
  };
  target.onclick = () => ws.send(JSON.stringify({ type: 'hit' }));
}
if (target) connect();
`;

/** A badge for players who own "premium" (bought once in the shop through Tessera; read from the `entitlements` claim). */
function premiumBadge(claims: Readonly<Record<string, unknown>>): string {
  const entitlements = claims.entitlements;
  return Array.isArray(entitlements) && entitlements.includes("premium")
    ? ` <span data-testid="premium-badge" class="badge">★ Premium</span>`
    : "";
}

function page(body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera Arena</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; background: #101522; color: #e8ecf6; }
  header { display: flex; justify-content: space-between; align-items: center; border-bottom: 1px solid #2b3450; }
  a { color: #9fb4ff; }
  button, a.button { background: #e0a526; color: #101522; border: 0; border-radius: .4rem; padding: .5rem .9rem; font: inherit; cursor: pointer; text-decoration: none; display: inline-block; }
  button:disabled { opacity: .4; }
  #target { font-size: 2rem; padding: 1.5rem 2.5rem; margin: 1.5rem 0; }
</style></head><body>${body}</body></html>`;
}

/**
 * The demo game: a Tessera client built only on `@tessera/sdk/fastify`, with a WebSocket channel authenticated from
 * the same cookies. When Tessera reports (back-channel) that a player's session ended, the game closes that
 * session's sockets at once.
 */
export async function buildDemoGame(options: DemoGameOptions): Promise<FastifyInstance> {
  // Query strings are dropped from logged URLs: the callback's carries the authorization code and state.
  const app = Fastify({
    logger: options.logger
      ? { serializers: { req: (request) => ({ method: request.method, url: String(request.url).split("?")[0] }) } }
      : false,
  });
  const publicUrl = options.publicUrl.replace(/\/+$/, "");
  await app.register(tesseraPlugin, {
    issuer: options.issuer,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    appSecret: options.appSecret,
    redirectUri: `${publicUrl}/auth/callback`,
    postLogoutRedirectUri: `${publicUrl}/`,
    // The shop runs on the same host (another port): cookies ignore ports, so each app has its own cookie names.
    cookies: { secure: options.secureCookies ?? publicUrl.startsWith("https://"), prefix: "game" },
    ...(options.now ? { now: options.now } : {}),
    ...(options.webhookSecret ? { webhooks: { secret: options.webhookSecret } } : {}),
  });
  if (options.webhookSecret) await app.register(webhookRoute);
  await app.register(websocket, { options: { maxPayload: 1024 } });

  const players = new Map<string, Player>();
  const socketsBySession = new Map<string, Set<WebSocket>>();

  const broadcast = () => {
    const message = JSON.stringify({
      type: "scores",
      players: [...players.values()]
        .filter((p) => p.sockets.size > 0)
        .map(({ name, score }) => ({ name, score }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 10),
    });
    for (const player of players.values()) for (const socket of player.sockets) socket.send(message);
  };

  app.tessera.onSessionRevoked(({ sessionId }) => {
    const sockets = socketsBySession.get(sessionId);
    if (!sockets) return;
    for (const socket of sockets) socket.close(SESSION_ENDED_CLOSE_CODE, "session ended");
    socketsBySession.delete(sessionId);
  });

  app.addHook("onSend", async (_request, reply) => {
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "same-origin");
    reply.header("content-security-policy", "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  });

  // A game is played signed in: an anonymous visitor is first sent on a silent check (prompt=none) for a Tessera
  // session, so a player already signed in on any other app (the shop) arrives signed in with no page shown. A
  // short-lived marker cookie stops the check from looping for a visitor who has no Tessera session.
  const secure = options.secureCookies ?? publicUrl.startsWith("https://");
  const checkedCookie = `game-sso-checked=1; Max-Age=30; Path=/; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;

  app.get("/", async (request, reply) => {
    const user = request.user;
    if (!user && !/(?:^|;\s*)game-sso-checked=1(?:;|$)/.test(request.headers.cookie ?? "")) {
      return reply
        .header("set-cookie", checkedCookie)
        .header("cache-control", "no-store")
        .redirect("/auth/login?prompt=none&returnTo=/", 302);
    }
    const shop = options.shopUrl ? `<p><a href="${escapeHtml(options.shopUrl)}">Visit the shop</a></p>` : "";
    const body = user
      ? `<header><h1>Tessera Arena</h1><div><p data-testid="status">Playing as <strong data-testid="user-email">${escapeHtml(user.email ?? user.id)}</strong>${premiumBadge(user.claims)}</p>
           <form method="post" action="/auth/logout"><button data-testid="sign-out">Sign out everywhere</button></form></div></header>
         <p>Socket: <span data-testid="socket-status">connecting</span></p>
         <button id="target" data-testid="target" disabled>Hit!</button>
         <h2>Scores</h2><ol data-testid="scoreboard"></ol>${shop}<script src="/game.js"></script>`
      : `<header><h1>Tessera Arena</h1><div><p data-testid="status">Signed out</p>
           <a data-testid="sign-in" class="button" href="/auth/login?returnTo=/">Sign in with Tessera</a></div></header>${shop}`;
    return reply.type("text/html").header("cache-control", "no-store").send(page(body));
  });

  app.get("/game.js", async (_request, reply) => reply.type("text/javascript").send(CLIENT_JS));

  app.get("/api/me", { onRequest: requireUser }, async (request, reply) => {
    const user = request.user!;
    reply.header("cache-control", "no-store");
    return { id: user.id, email: user.email, name: user.name, sessionId: user.sessionId };
  });

  // Moderation: only players whose Tessera role in this game grants `chat:mute` may mute someone. The permission comes
  // from the token's claims (the `roles` scope), re-read at every refresh, so a revoked role stops working then.
  const muted = new Set<string>();
  app.post("/api/chat/mute", { onRequest: requirePermission("chat:mute") }, async (request, reply) => {
    const player = (request.body as { player?: unknown } | undefined)?.player;
    if (typeof player !== "string" || player.length === 0 || player.length > 100) {
      return reply.code(400).send({ error: { code: "VALIDATION_FAILED", message: "player must be a name." } });
    }
    muted.add(player);
    reply.header("cache-control", "no-store");
    return { muted: player, by: request.user?.email ?? request.user?.id };
  });

  // The upgrade request was authenticated by the plugin from its cookies (never refreshed: a 101 cannot carry
  // cookies); requireUser refuses it with 401 before the upgrade happens.
  app.get("/ws", { websocket: true, onRequest: requireUser }, (socket, request) => {
    const user = request.user!;
    const player = players.get(user.id) ?? { name: user.name ?? user.email ?? "player", score: 0, sockets: new Set() };
    players.set(user.id, player);
    player.sockets.add(socket);
    const sessionSockets = socketsBySession.get(user.sessionId) ?? new Set();
    sessionSockets.add(socket);
    socketsBySession.set(user.sessionId, sessionSockets);
    socket.send(JSON.stringify({ type: "welcome", name: player.name }));
    broadcast();

    socket.on("message", (raw: Buffer) => {
      let message: unknown;
      try {
        message = JSON.parse(String(raw));
      } catch {
        return;
      }
      if ((message as { type?: unknown })?.type === "hit") {
        player.score += 1;
        broadcast();
      }
    });
    socket.on("close", () => {
      player.sockets.delete(socket);
      sessionSockets.delete(socket);
      broadcast();
    });
  });

  return app;
}
