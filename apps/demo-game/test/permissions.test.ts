import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { users } from "../../../packages/db/src/index.ts";
import { createTestDatabase } from "../../../packages/db/src/testing.ts";
import { testConfig } from "../../auth-server/src/config/index.ts";
import { sessionCookieName } from "../../auth-server/src/http/session.ts";
import { assignRole, createRole, unassignRole } from "../../auth-server/src/libraries/authorization/index.ts";
import { createClient } from "../../auth-server/src/libraries/clients/index.ts";
import { TestClock } from "../../auth-server/src/libraries/clock.ts";
import { drainWebhooks } from "../../auth-server/src/libraries/jobs/webhooks.ts";
import { signIn } from "../../auth-server/src/libraries/sessions.ts";
import { setWebhook } from "../../auth-server/src/libraries/webhooks/index.ts";
import { build } from "../../auth-server/test/contract.ts";
import { buildDemoGame } from "../src/app.ts";

/**
 * The game's moderation route, guarded by the SDK's requirePermission("chat:mute"), on REAL tokens: a Tessera server
 * (listening on 127.0.0.1) issues the claims, the game asks for the `roles` scope by default, a moderator may mute and
 * a player may not, and revoking the role takes effect at the game's next refresh (the SDK re-reads the claims).
 */
const GAME_URL = "http://127.0.0.1:4002";
const ACTOR = { actorId: null, meta: { ip: undefined, userAgent: "vitest" }, via: "test" };

let tessera: FastifyInstance;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let game: FastifyInstance;
let gameClientId: string;
let moderatorRoleId: string;
/** One clock for Tessera and the game, moved by the tests (tokens expire on both sides alike). */
const clock = new TestClock();
const advance = (seconds: number) => clock.advance(seconds);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  database = await createTestDatabase();
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  tessera = await build(testConfig({ ISSUER: issuer, RATE_LIMIT_ENABLED: "false" }), { database, clock });
  await tessera.listen({ host: "127.0.0.1", port });
  const { client, clientSecret } = await createClient(tessera.ctx, {
    name: "Arena",
    redirectUris: [`${GAME_URL}/auth/callback`],
    postLogoutRedirectUris: [`${GAME_URL}/`],
    firstParty: true,
  });
  gameClientId = client.clientId;
  moderatorRoleId = (
    await createRole(tessera.ctx, gameClientId, { name: "moderator", permissions: ["chat:mute", "chat:kick"] }, ACTOR)
  ).id;
  // Tessera's webhooks go to the game itself, listening on 127.0.0.1 (its redirect URIs stay on GAME_URL).
  const gamePort = await freePort();
  const { secret } = await setWebhook(
    tessera.ctx,
    gameClientId,
    { url: `http://127.0.0.1:${gamePort}/webhooks/tessera`, events: ["roles.changed", "session.ended"] },
    ACTOR,
  );
  game = await buildDemoGame({
    webhookSecret: secret,
    issuer,
    clientId: client.clientId,
    clientSecret,
    appSecret: randomBytes(32).toString("base64url"),
    publicUrl: GAME_URL,
    now: () => clock.now().getTime(),
  });
  await game.listen({ host: "127.0.0.1", port: gamePort });
});
afterAll(async () => {
  await game?.close();
  await tessera?.close();
  await database?.close();
});

/** Cookies set on a response, merged into a jar. */
function keep(jar: Map<string, string>, setCookie: string | string[] | undefined) {
  for (const line of ([] as string[]).concat(setCookie ?? [])) {
    const [pair] = line.split(";");
    const eq = (pair ?? "").indexOf("=");
    const name = (pair ?? "").slice(0, eq);
    const value = (pair ?? "").slice(eq + 1);
    if (value === "" || /max-age=0/i.test(line)) jar.delete(name);
    else jar.set(name, value);
  }
}
const header = (jar: Map<string, string>) => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");

/** A Tessera account signed in to the game through the real authorization-code flow; returns the game's cookies. */
async function playerSignedIn(email: string): Promise<{ userId: string; jar: Map<string, string> }> {
  const [user] = await tessera.ctx.db
    .insert(users)
    .values({ email, displayName: "Player", emailVerifiedAt: clock.now() })
    .returning();
  const userId = (user as { id: string }).id;
  const { token } = await signIn(tessera.ctx, tessera.ctx.db, {
    userId,
    amr: ["pwd"],
    meta: { ip: "127.0.0.1", userAgent: "vitest" },
  });
  const jar = new Map<string, string>();
  const login = await game.inject({ method: "GET", url: "/auth/login?returnTo=/" });
  keep(jar, login.headers["set-cookie"]);
  const authorizeUrl = String(login.headers.location);
  expect(new URL(authorizeUrl).searchParams.get("scope")).toBe("openid profile email offline_access roles");
  const authorize = await fetch(authorizeUrl, {
    redirect: "manual",
    headers: { cookie: `${sessionCookieName(tessera.ctx.config)}=${token}` },
  });
  expect(authorize.status).toBe(302);
  const callback = new URL(String(authorize.headers.get("location")));
  const done = await game.inject({
    method: "GET",
    url: `${callback.pathname}${callback.search}`,
    headers: { cookie: header(jar) },
  });
  expect(done.statusCode).toBe(303);
  keep(jar, done.headers["set-cookie"]);
  return { userId, jar };
}

const mute = (jar: Map<string, string>) =>
  game.inject({
    method: "POST",
    url: "/api/chat/mute",
    headers: { cookie: header(jar), "content-type": "application/json" },
    payload: JSON.stringify({ player: "troll" }),
  });

describe("moderators can mute in chat (requirePermission on real Tessera tokens)", () => {
  it("lets a moderator mute, refuses a player with 403, and an anonymous visitor with 401", async () => {
    const moderator = await playerSignedIn("mod@example.com");
    // The role is given after sign-in: the game learns of it at its next refresh, when the SDK re-reads the claims.
    expect((await mute(moderator.jar)).statusCode).toBe(403);
    await assignRole(tessera.ctx, moderator.userId, { roleId: moderatorRoleId }, ACTOR);
    advance(301); // the access JWTs expire: the next request refreshes at Tessera and re-reads the claims
    const allowed = await mute(moderator.jar);
    expect(allowed.statusCode).toBe(200);
    expect(allowed.json()).toEqual({ muted: "troll", by: "mod@example.com" });
    keep(moderator.jar, allowed.headers["set-cookie"]);

    const player = await playerSignedIn("player@example.com");
    const refused = await mute(player.jar);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().code).toBe("FORBIDDEN");
    const anonymous = await game.inject({ method: "POST", url: "/api/chat/mute", payload: { player: "x" } });
    expect(anonymous.statusCode).toBe(401);
  });

  it("stops a moderator whose role was revoked at the game's next refresh", async () => {
    const moderator = await playerSignedIn("mod3@example.com");
    await assignRole(tessera.ctx, moderator.userId, { roleId: moderatorRoleId }, ACTOR);
    advance(301);
    const first = await mute(moderator.jar);
    expect(first.statusCode).toBe(200);
    keep(moderator.jar, first.headers["set-cookie"]);
    await unassignRole(tessera.ctx, moderator.userId, moderatorRoleId, ACTOR);
    // Until the access JWT expires the game trusts it (5 minutes at most); at the refresh the permission is gone.
    expect((await mute(moderator.jar)).statusCode).toBe(200);
    advance(301);
    const after = await mute(moderator.jar);
    expect(after.statusCode).toBe(403);
    expect(after.json().code).toBe("FORBIDDEN");
  });
});

describe("webhooks: a role removed at Tessera takes effect at the game's next request", () => {
  it("loses the permission without waiting for the access JWT to expire", async () => {
    const moderator = await playerSignedIn("mod-webhook@example.com");
    await assignRole(tessera.ctx, moderator.userId, { roleId: moderatorRoleId }, ACTOR);
    await drainWebhooks(tessera.ctx); // roles.changed: the next request refreshes, no expiry needed
    const first = await mute(moderator.jar);
    expect(first.statusCode).toBe(200);
    keep(moderator.jar, first.headers["set-cookie"]);
    expect((await mute(moderator.jar)).statusCode).toBe(200);

    await unassignRole(tessera.ctx, moderator.userId, moderatorRoleId, ACTOR);
    expect(await drainWebhooks(tessera.ctx)).toEqual({ delivered: 1, failed: 0, dead: 0 });
    // Same instant: the access JWT is still valid for minutes, yet the claims are re-read at once.
    const after = await mute(moderator.jar);
    expect(after.statusCode).toBe(403);
    expect(after.json().code).toBe("FORBIDDEN");
    keep(moderator.jar, after.headers["set-cookie"]);
    // And once refreshed, the new access JWT is used as is (no refresh on every request).
    const again = await mute(moderator.jar);
    expect(again.statusCode).toBe(403);
    expect(again.headers["set-cookie"]).toBeUndefined();
  });
});
