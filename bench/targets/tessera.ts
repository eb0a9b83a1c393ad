/**
 * Benchmark target: Tessera as operators run it: `node apps/auth-server/dist/server.js` (the esbuild bundle; built by
 * bench/oauth.mjs before the run), on PostgreSQL (DATABASE_URL), with LOG_LEVEL=warn. This helper process seeds the
 * database from source (client, users, sessions), starts the compiled server as its child and mints refresh-token
 * chains through the server's own HTTP endpoints. The helper answers the bench's IPC ("cpu", "rss", "chains N",
 * "access") with the figures of the server process (read from /proc), never its own.
 *
 * The server gets the node flags of `pnpm start`; BENCH_NODE_FLAGS replaces them (e.g. "" for none); BENCH_CPU_PROF=prefix: the
 * server runs with --cpu-prof and writes its profile next to prefix when it exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "../../apps/auth-server/src/app.ts";
import { loadConfig } from "../../apps/auth-server/src/config/index.ts";
import { sessionCookieName } from "../../apps/auth-server/src/http/session.ts";
import { assignRole, createRole, grantEntitlement } from "../../apps/auth-server/src/libraries/authorization/index.ts";
import { createClient } from "../../apps/auth-server/src/libraries/clients/index.ts";
import { hashPassword } from "../../apps/auth-server/src/libraries/passwords.ts";
import { signIn } from "../../apps/auth-server/src/libraries/sessions.ts";
import { users } from "../../packages/db/src/index.ts";

const REDIRECT = "https://bench.example/cb";
const PASSWORD = "correct horse battery staple";
const LOGIN_USERS = 16;
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

const port = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const address = probe.address();
    probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
  });
});
const env = {
  ...process.env,
  NODE_ENV: "production",
  ISSUER: "https://tessera.bench.example",
  TESSERA_MASTER_KEY: "22".repeat(32),
  LOG_LEVEL: "warn",
  // BENCH_SIGNING_ALG=ES256|EdDSA to measure another signing algorithm (default: Tessera's default).
  ...(process.env.BENCH_SIGNING_ALG ? { SIGNING_ALG: process.env.BENCH_SIGNING_ALG } : {}),
  RATE_LIMIT_ENABLED: "false",
  COOKIE_SECURE: "true",
  MAIL_DRIVER: "mailjet",
  MAILJET_API_KEY: "unused",
  MAILJET_API_SECRET: "unused",
  PORT: String(port),
  HOST: "127.0.0.1",
};
const config = loadConfig(env);
// Migrates the database and creates the signing key; never listens. The compiled server then finds both in place.
const seeder = await build(config, { startJobs: false });
const { client, clientSecret } = await createClient(seeder.ctx, {
  name: "Bench",
  redirectUris: [REDIRECT],
  firstParty: true,
});
const now = seeder.ctx.clock.now();
const passwordHash = await hashPassword(config.passwords, PASSWORD);
const emails: string[] = [];
let firstUserId = "";
for (let i = 0; i < LOGIN_USERS; i++) {
  const email = `bench-${i}-${randomBytes(3).toString("hex")}@example.com`;
  const [row] = await seeder.ctx.db
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
    seeder.ctx,
    client.clientId,
    { name: "moderator", permissions: ["chat:mute", "chat:kick", "chat:warn"] },
    actor,
  );
  const staff = await createRole(seeder.ctx, null, { name: "staff" }, actor);
  await assignRole(seeder.ctx, firstUserId, { roleId: moderator.id }, actor);
  await assignRole(seeder.ctx, firstUserId, { roleId: staff.id }, actor);
  await grantEntitlement(seeder.ctx, firstUserId, { name: "premium" }, actor);
}
const cookieName = sessionCookieName(config);
async function sessionCookie(): Promise<string> {
  const { token } = await signIn(seeder.ctx, seeder.ctx.db, {
    userId: firstUserId,
    amr: ["pwd"],
    meta: { ip: "127.0.0.1", userAgent: "bench" },
  });
  return `${cookieName}=${token}`;
}
const cookie = await sessionCookie();
const basic = `Basic ${Buffer.from(`${client.clientId}:${encodeURIComponent(clientSecret)}`).toString("base64")}`;

// The node flags of `pnpm start` (root package.json: "node [flags] apps/auth-server/dist/server.js"), or BENCH_NODE_FLAGS.
const startLine: string = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts.start;
const startFlags = startLine.replace(/^node /, "").replace(/apps\/auth-server\/dist\/server\.js$/, "");
const flags = (process.env.BENCH_NODE_FLAGS ?? startFlags).split(" ").filter(Boolean);
if (process.env.BENCH_CPU_PROF) {
  flags.push("--cpu-prof", `--cpu-prof-dir=${dirname(process.env.BENCH_CPU_PROF)}`);
}
const server: ChildProcess = spawn(process.execPath, [...flags, "apps/auth-server/dist/server.js"], {
  cwd: root,
  env,
  stdio: ["ignore", "inherit", "inherit"],
});
server.once("exit", (code) => {
  process.stderr.write(`bench: the compiled server exited (${code})\n`);
  process.exit(1);
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  const ready = await fetch(`${base}/readyz`).then(
    (r) => r.status === 200,
    () => false,
  );
  if (ready) break;
  if (i > 200) throw new Error("the compiled server never became ready");
  await new Promise((r) => setTimeout(r, 50));
}

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

/** One authorization-code flow through the compiled server, in its own sign-in session unless `withCookie` is given. */
async function newChain(withCookie?: string): Promise<{ refresh_token: string; access_token: string }> {
  const useCookie = withCookie ?? (await sessionCookie());
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const authorize = await fetch(`${base}${authorizeUrl(challenge)}`, {
    headers: { cookie: useCookie },
    redirect: "manual",
  });
  const code = new URL(authorize.headers.get("location") ?? "", REDIRECT).searchParams.get("code");
  if (!code) throw new Error(`authorize answered ${authorize.status}`);
  const token = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    }).toString(),
  });
  if (token.status !== 200) throw new Error(`token answered ${token.status}: ${await token.text()}`);
  return (await token.json()) as { refresh_token: string; access_token: string };
}

/**
 * utime + stime of the server process in µs (from /proc: clock ticks of 10 ms), and of its main thread alone (the
 * JavaScript; the rest is libuv's pool — argon2, file I/O — and V8's helper threads).
 */
function serverCpu(): { user: number; system: number; main: number } {
  const ticks = (path: string) => {
    const fields = readFileSync(path, "utf8").split(") ")[1]?.split(" ") ?? [];
    return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 };
  };
  const all = ticks(`/proc/${server.pid}/stat`);
  const main = ticks(`/proc/${server.pid}/task/${server.pid}/stat`);
  return { ...all, main: main.user + main.system };
}
function serverRss(): number {
  const line = readFileSync(`/proc/${server.pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) * 1024;
}

const first = await newChain(cookie);
process.stdout.write(
  `${JSON.stringify({
    port,
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

process.on("message", async (message: string) => {
  // Profiles come from --cpu-prof (BENCH_CPU_PROF), written when the server exits: nothing to start or stop here.
  if (message === "profile-start" || message.startsWith("profile-stop ")) process.send?.({ ok: true });
  else if (message === "cpu") process.send?.({ cpu: serverCpu() });
  else if (message === "rss") process.send?.({ rss: serverRss() });
  else if (message === "access") process.send?.({ accessToken: (await newChain(cookie)).access_token });
  else if (message.startsWith("chains ")) {
    const n = Number(message.slice(7));
    const chains = [];
    for (let i = 0; i < n; i++) chains.push((await newChain()).refresh_token);
    process.send?.({ chains });
  }
});
// The compiled server never outlives this process: SIGTERM gives it 3 s to shut down gracefully (a --cpu-prof
// profile is written then), any exit of this process kills it.
process.on("exit", () => server.kill("SIGKILL"));
process.on("SIGTERM", () => {
  server.removeAllListeners("exit");
  server.once("exit", () => seeder.close().finally(() => process.exit(0)));
  server.kill("SIGTERM");
  setTimeout(() => process.exit(1), 3000).unref();
});
