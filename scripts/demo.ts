/**
 * `pnpm demo`: Tessera on the embedded database plus the two demo client apps (a shop and a game), each on its own
 * port. Registers the two clients if they do not exist, creates a demo user (development only: refused in production
 * mode), and prints the URLs and the demo credentials.
 *
 * The clients' secrets are shown once by Tessera, so the launcher keeps them (and the apps' own secrets and the demo
 * password) in `${DATA_DIR}/demo.json`, mode 0600, next to the development database; delete it to start afresh.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "../apps/auth-server/src/app.ts";
import { type Config, loadConfig } from "../apps/auth-server/src/config/index.ts";
import {
  type ClientInput,
  createClient,
  findActiveClient,
  updateClient,
} from "../apps/auth-server/src/libraries/clients/index.ts";
import { hashPassword } from "../apps/auth-server/src/libraries/passwords.ts";
import { findUserByEmail, insertUser, updateUser } from "../apps/auth-server/src/queries/users.ts";
import { buildDemoGame } from "../apps/demo-game/src/app.ts";
import { buildDemoWeb } from "../apps/demo-web/src/app.ts";

// Types are derived from build() so this script needs no packages of its own (root has no runtime dependencies).
type App = Awaited<ReturnType<typeof build>>;
type AppCtx = App["ctx"];
type DatabaseHandle = NonNullable<NonNullable<Parameters<typeof build>[1]>["database"]>;

export interface DemoOptions {
  /** Environment for Tessera's config (ISSUER, PORT, DATA_DIR, ...). Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** An open database (tests pass an in-memory one); default: the embedded database in DATA_DIR. */
  database?: DatabaseHandle;
  /** Host all three listen on. Default 127.0.0.1. */
  host?: string;
  /** Public host name in URLs. Default `localhost`. */
  publicHost?: string;
  webPort?: number;
  gamePort?: number;
  /** Where the client credentials are kept between runs; default `${DATA_DIR}/demo.json`; `false`: not kept. */
  stateFile?: string | false;
  logger?: boolean;
}

export interface RunningDemo {
  /** Tessera itself (tests reach its context, e.g. to set up a plan). */
  tessera: App;
  issuer: string;
  webUrl: string;
  gameUrl: string;
  user: { email: string; password: string };
  close(): Promise<void>;
}

interface DemoState {
  web?: { clientId: string; clientSecret: string; appSecret: string };
  game?: { clientId: string; clientSecret: string; appSecret: string };
  user?: { email: string; password: string };
}

const DEMO_EMAIL = "demo@tessera.local";
const DEMO_ACTOR = { actorId: null, meta: { ip: undefined, userAgent: undefined }, via: "demo" };

function clientInput(name: string, url: string): ClientInput {
  return {
    name,
    redirectUris: [`${url}/auth/callback`],
    postLogoutRedirectUris: [`${url}/`],
    backchannelLogoutUri: `${url}/auth/backchannel-logout`,
    // First-party demo apps: no consent screen, so the second app signs in with no prompt at all.
    firstParty: true,
  };
}

async function ensureClient(
  deps: AppCtx,
  saved: DemoState["web"],
  name: string,
  url: string,
): Promise<NonNullable<DemoState["web"]>> {
  const input = clientInput(name, url);
  const existing = saved ? await findActiveClient(deps.db, saved.clientId) : null;
  if (saved && existing) {
    const same =
      existing.redirectUris.join() === input.redirectUris.join() &&
      existing.backchannelLogoutUri === input.backchannelLogoutUri &&
      existing.firstParty;
    if (!same) await updateClient(deps, saved.clientId, input, DEMO_ACTOR);
    return saved;
  }
  const { client, clientSecret } = await createClient(deps, input, DEMO_ACTOR);
  return { clientId: client.clientId, clientSecret, appSecret: randomBytes(32).toString("base64url") };
}

async function ensureUser(deps: AppCtx, config: Config, saved: DemoState["user"]) {
  const password = saved?.password ?? `demo-${randomBytes(9).toString("base64url")}`;
  const passwordHash = await hashPassword(config.passwords, password);
  const now = deps.clock.now();
  const existing = await findUserByEmail(deps.db, DEMO_EMAIL);
  const user =
    existing ?? (await insertUser(deps.db, { email: DEMO_EMAIL, passwordHash, displayName: "Demo Player", now }));
  if (!user) throw new Error("could not create the demo user");
  // The password is (re)set on every run so the printed credentials always work; the email counts as verified.
  await updateUser(deps.db, user.id, { passwordHash, passwordChangedAt: now, emailVerifiedAt: now, updatedAt: now });
  return { email: DEMO_EMAIL, password };
}

/** Starts Tessera and both demo apps; resolves once all three listen. */
export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const env = options.env ?? process.env;
  const host = options.host ?? "127.0.0.1";
  const publicHost = options.publicHost ?? "localhost";
  const authPort = Number(env.PORT ?? 3000);
  // Deliver back-channel logouts every second, so signing out in one app shows in the other at once.
  const config = loadConfig({
    ISSUER: `http://${publicHost}:${authPort}`,
    BACKCHANNEL_INTERVAL_SECONDS: "1",
    ...env,
    PORT: String(authPort),
  });
  if (config.env === "production") {
    throw new Error("pnpm demo creates a demo user with a known password and is refused in production mode");
  }
  const webUrl = `http://${publicHost}:${options.webPort ?? 4001}`;
  const gameUrl = `http://${publicHost}:${options.gamePort ?? 4002}`;

  // startJobs: the back-channel logout worker (and the sweeper) run as under `pnpm start`.
  const tessera = await build(config, { startJobs: true, ...(options.database ? { database: options.database } : {}) });
  const opened: App[] = [tessera];
  const close = async () => {
    for (const app of opened.reverse()) await app.close();
  };
  try {
    await tessera.listen({ port: authPort, host });

    const stateFile = options.stateFile ?? join(config.dataDir, "demo.json");
    const state: DemoState = stateFile && existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, "utf8")) : {};
    state.web = await ensureClient(tessera.ctx, state.web, "Tessera Shop (demo)", webUrl);
    state.game = await ensureClient(tessera.ctx, state.game, "Tessera Arena (demo)", gameUrl);
    state.user = await ensureUser(tessera.ctx, config, state.user);
    if (stateFile) {
      mkdirSync(config.dataDir, { recursive: true });
      writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
    }

    const web = await buildDemoWeb({
      issuer: config.issuer,
      ...state.web,
      publicUrl: webUrl,
      gameUrl,
      logger: options.logger ?? false,
    });
    opened.push(web);
    const game = await buildDemoGame({
      issuer: config.issuer,
      ...state.game,
      publicUrl: gameUrl,
      shopUrl: webUrl,
      logger: options.logger ?? false,
    });
    opened.push(game);
    await web.listen({ port: Number(new URL(webUrl).port), host });
    await game.listen({ port: Number(new URL(gameUrl).port), host });
    return { tessera, issuer: config.issuer, webUrl, gameUrl, user: state.user, close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function main(): Promise<void> {
  let demo: RunningDemo;
  try {
    demo = await startDemo({
      webPort: Number(process.env.DEMO_WEB_PORT ?? 4001),
      gamePort: Number(process.env.DEMO_GAME_PORT ?? 4002),
    });
  } catch (error) {
    process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  process.stdout.write(
    [
      "",
      "Tessera demo is running:",
      `  identity provider  ${demo.issuer}`,
      `  shop (demo-web)    ${demo.webUrl}`,
      `  game (demo-game)   ${demo.gameUrl}`,
      "",
      "Demo user (created for this demo only):",
      `  email     ${demo.user.email}`,
      `  password  ${demo.user.password}`,
      "",
      "Sign in on the shop, open the game (no second prompt), sign out in either. Ctrl+C stops everything.",
      "",
    ].join("\n"),
  );
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      demo.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
