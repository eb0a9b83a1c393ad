/**
 * Benchmark target: Tessera on PostgreSQL (DATABASE_URL), built and listening as server.ts does (no background jobs),
 * with LOG_LEVEL=warn so per-request log lines are not measured. Seeds what the benchmarks need through its own HTTP
 * API (app.inject, before anything is timed) and prints one JSON line; then serves until killed. Answers "cpu" and
 * "rss" over IPC, and "chains N" with N fresh refresh tokens.
 */
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import type { AddressInfo } from "node:net";
import { build } from "../../apps/auth-server/src/app.ts";
import { loadConfig } from "../../apps/auth-server/src/config/index.ts";
import { assignRole, createRole, grantEntitlement } from "../../apps/auth-server/src/libraries/authorization/index.ts";
import { createClient } from "../../apps/auth-server/src/libraries/clients/index.ts";
import { hashPassword } from "../../apps/auth-server/src/libraries/passwords.ts";
import { signIn } from "../../apps/auth-server/src/libraries/sessions.ts";
import { users } from "../../packages/db/src/index.ts";

const REDIRECT = "https://bench.example/cb";
const PASSWORD = "correct horse battery staple";
const LOGIN_USERS = 16;

const config = loadConfig({
  ...process.env,
  NODE_ENV: "production",
  ISSUER: "https://tessera.bench.example",
  TESSERA_MASTER_KEY: "22".repeat(32),
  LOG_LEVEL: "warn",
  // BENCH_SIGNING_ALG=ES256|EdDSA to measure another signing algorithm (default: Tessera's default, RS256).
  SIGNING_ALG: process.env.BENCH_SIGNING_ALG ?? "RS256",
  RATE_LIMIT_ENABLED: "false",
  COOKIE_SECURE: "true",
  MAIL_DRIVER: "mailjet",
  MAILJET_API_KEY: "unused",
  MAILJET_API_SECRET: "unused",
});
const app = await build(config, { startJobs: false });
await app.listen({ port: 0, host: "127.0.0.1" });

const { client, clientSecret } = await createClient(app.ctx, {
  name: "Bench",
  redirectUris: [REDIRECT],
  firstParty: true,
});
const now = app.ctx.clock.now();
const passwordHash = await hashPassword(config.passwords, PASSWORD);
const emails: string[] = [];
let firstUserId = "";
for (let i = 0; i < LOGIN_USERS; i++) {
  const email = `bench-${i}-${randomBytes(3).toString("hex")}@example.com`;
  const [row] = await app.ctx.db
    .insert(users)
    .values({ email, passwordHash, displayName: "Bench", emailVerifiedAt: now, createdAt: now, updatedAt: now })
    .returning();
  if (!row) throw new Error("no user");
  firstUserId ||= row.id;
  emails.push(email);
}
// The tokens carry authorization claims (the roles scope, as the SDK asks by default): the first user has a role with
// permissions in the bench client, a global role, and an entitlement. BENCH_ROLES_SCOPE=false measures without.
const SCOPE = `openid profile email offline_access${process.env.BENCH_ROLES_SCOPE === "false" ? "" : " roles"}`;
{
  const actor = { actorId: null, meta: { ip: undefined, userAgent: "bench" }, via: "bench" };
  const moderator = await createRole(
    app.ctx,
    client.clientId,
    { name: "moderator", permissions: ["chat:mute", "chat:kick", "chat:warn"] },
    actor,
  );
  const staff = await createRole(app.ctx, null, { name: "staff" }, actor);
  await assignRole(app.ctx, firstUserId, { roleId: moderator.id }, actor);
  await assignRole(app.ctx, firstUserId, { roleId: staff.id }, actor);
  await grantEntitlement(app.ctx, firstUserId, { name: "premium" }, actor);
}
const { token: sessionToken } = await signIn(app.ctx, app.ctx.db, {
  userId: firstUserId,
  amr: ["pwd"],
  meta: { ip: "127.0.0.1", userAgent: "bench" },
});
const cookieName = (await import("../../apps/auth-server/src/http/session.ts")).sessionCookieName(config);
const cookie = `${cookieName}=${sessionToken}`;
const basic = `Basic ${Buffer.from(`${client.clientId}:${encodeURIComponent(clientSecret)}`).toString("base64")}`;

function authorizeUrl(challenge: string): string {
  return `/authorize?${new URLSearchParams({
    client_id: client.clientId,
    redirect_uri: REDIRECT,
    response_type: "code",
    scope: SCOPE,
    code_challenge: challenge,
    code_challenge_method: "S256",
  })}`;
}

/**
 * One authorization-code flow through the app (not timed): a fresh refresh-token chain, in its own sign-in session
 * unless `sessionCookie` is given (16 chains of one session would queue on its row lock; real traffic is many users).
 */
async function newChain(sessionCookie?: string): Promise<{ refresh_token: string; access_token: string }> {
  let cookie = sessionCookie;
  if (!cookie) {
    const { token } = await signIn(app.ctx, app.ctx.db, {
      userId: firstUserId,
      amr: ["pwd"],
      meta: { ip: "127.0.0.1", userAgent: "bench" },
    });
    cookie = `${cookieName}=${token}`;
  }
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const authorize = await app.inject({ method: "GET", url: authorizeUrl(challenge), headers: { cookie } });
  const code = new URL(String(authorize.headers.location), REDIRECT).searchParams.get("code");
  if (!code) throw new Error(`authorize answered ${authorize.statusCode}`);
  const token = await app.inject({
    method: "POST",
    url: "/token",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic },
    payload: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    }).toString(),
  });
  if (token.statusCode !== 200) throw new Error(`token answered ${token.statusCode}: ${token.body}`);
  return token.json();
}

const first = await newChain(cookie);
process.stdout.write(
  `${JSON.stringify({
    port: (app.server.address() as AddressInfo).port,
    basic,
    accessToken: first.access_token,
    cookie,
    authorizeUrl: authorizeUrl(createHash("sha256").update("v".repeat(43)).digest("base64url")),
    verifier: "v".repeat(43),
    redirectUri: REDIRECT,
    emails,
    password: PASSWORD,
    origin: config.issuer,
    paths: { introspect: "/introspect", userinfo: "/userinfo" },
  })}\n`,
);

const profiler = new Session();
profiler.connect();
const post = (method: string, params?: object) =>
  new Promise<unknown>((resolve, reject) =>
    profiler.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
  );

process.on("message", async (message: string) => {
  if (message === "profile-start") {
    await post("Profiler.enable");
    await post("Profiler.start");
    process.send?.({ ok: true });
  } else if (message.startsWith("profile-stop ")) {
    const { profile } = (await post("Profiler.stop")) as { profile: object };
    writeFileSync(message.slice(13), JSON.stringify(profile));
    process.send?.({ ok: true });
  } else if (message === "cpu") process.send?.({ cpu: process.cpuUsage() });
  else if (message === "rss") process.send?.({ rss: process.memoryUsage().rss });
  else if (message === "access") process.send?.({ accessToken: (await newChain(cookie)).access_token });
  else if (message.startsWith("chains ")) {
    const n = Number(message.slice(7));
    const chains = [];
    for (let i = 0; i < n; i++) chains.push((await newChain()).refresh_token);
    process.send?.({ chains });
  }
});
process.on("SIGTERM", () => {
  app.close().then(() => process.exit(0));
});
