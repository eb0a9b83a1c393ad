import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Config } from "../../config/index.ts";
import { type ClientRow, getClient } from "../../libraries/clients/index.ts";
import { seeOther } from "../pages/render.ts";
import { consoleAccess } from "./guard.ts";
import { pageConfig, renderConsole } from "./render.ts";

export const TRY_IT_PATH = "/admin/try-it/callback";

/** The console-owned redirect URI a client needs registered for "try it". */
export function tryItRedirectUri(config: Config): string {
  return `${config.issuer.replace(/\/$/, "")}${TRY_IT_PATH}`;
}

/** Whether "try it" can run for this client (enabled, with the console's callback among its redirect URIs). */
export function tryItReady(config: Config, client: ClientRow): boolean {
  return !client.disabledAt && client.redirectUris.includes(tryItRedirectUri(config));
}

const cookieName = (config: Config) => (config.cookieSecure ? "__Host-tessera_try" : "tessera_try");
const cookieOptions = (config: Config) => ({
  path: "/",
  httpOnly: true,
  secure: config.cookieSecure,
  sameSite: "lax" as const,
});

/** The state cookie: `<state>.<client_id>`; the callback checks both against what comes back. */
function readCookie(request: FastifyRequest, config: Config): { state: string; clientId: string } | null {
  const raw = request.cookies[cookieName(config)];
  const match = raw ? /^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{1,128})$/.exec(raw) : null;
  return match ? { state: match[1] as string, clientId: match[2] as string } : null;
}

const sameString = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

/**
 * "Try it" (#14): a real authorization request for a client, from the console, that lands on a console-owned page.
 * The client's own redirect URI cannot finish it (the app never started it, so its state check refuses the answer),
 * so the console's callback must be registered on the client; the client page offers it when it is missing. The
 * callback checks the state (cookie bound to this browser and client) and shows that Tessera issued a code to the
 * signed-in person: the whole sign-in (session, two-step, consent, authorization code) ran. It does not redeem the
 * code: that needs the client's secret, which only the app holds; the unused code expires in seconds.
 */
export async function tryItPages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);
  const config = app.ctx.config;

  app.get("/admin/clients/:id/try", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const client = await getClient(app.ctx.db, String((request.params as { id?: string }).id ?? ""));
    if (!tryItReady(config, client)) {
      return seeOther(reply, `/admin/clients/${encodeURIComponent(client.clientId)}?notice=try_it_needs_uri`);
    }
    const state = randomBytes(24).toString("base64url");
    const challenge = createHash("sha256").update(randomBytes(32).toString("base64url")).digest("base64url");
    reply.setCookie(cookieName(config), `${state}.${client.clientId}`, { ...cookieOptions(config), maxAge: 600 });
    const params = new URLSearchParams({
      response_type: "code",
      client_id: client.clientId,
      redirect_uri: tryItRedirectUri(config),
      scope: "openid",
      state,
      nonce: randomBytes(16).toString("base64url"),
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    return seeOther(reply, `/authorize?${params}`);
  });

  app.get(TRY_IT_PATH, page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const query = request.query as Record<string, unknown>;
    const text = (name: string, max = 500) => {
      const value = query[name];
      return typeof value === "string" && value.length <= max ? value : undefined;
    };
    const started = readCookie(request, config);
    reply.clearCookie(cookieName(config), cookieOptions(config));
    const state = text("state", 64);
    const matches = Boolean(started && state && sameString(state, started.state));
    const client = matches && started ? await getClient(app.ctx.db, started.clientId).catch(() => null) : null;
    const outcome = !matches || !client ? "state" : text("code", 512) ? "success" : "error";
    return renderConsole(
      request,
      reply,
      admin,
      "try-it",
      {
        title: outcome === "success" ? "Sign-in worked" : "Sign-in did not finish",
        active: "/admin/clients",
        outcome,
        client,
        error: outcome === "error" ? (text("error", 100) ?? "unknown") : null,
        errorDescription: outcome === "error" ? (text("error_description") ?? null) : null,
        who: admin.current.user.email,
      },
      outcome === "state" ? 400 : 200,
    );
  });
}
