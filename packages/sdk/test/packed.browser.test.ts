/**
 * The SDK as a newcomer meets it: `pnpm pack`ed (as a publish packs it), `npm install`ed from the tarball into two fresh
 * apps OUTSIDE the workspace (a Fastify app and an Express app), each app being the README's quick start code block
 * extracted as printed (no substitution: the quick starts read their issuer, client credentials and port from the
 * environment), type-checked and compiled by the app's own `tsc` against the packed declarations, run by plain Node,
 * and a user signed in through each in Chromium against a real Tessera listening on a free port (sign-in page, consent
 * page, back to the app greeting the user).
 *
 * npm needs the registry (`--prefer-offline`: its cache answers what it can). The installed apps are kept in the temp
 * dir under a key of the SDK's sources, manifest and the app's dependency list: a re-run with an unchanged SDK neither
 * builds, packs nor installs again (only the README's code and the type-check are redone).
 * Screenshots: test-output/browser/sdk-packed.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../../apps/auth-server/src/libraries/clients/index.ts";
import { type RunningDemo, startDemo } from "../../../scripts/demo.ts";
import { launchTestBrowser, type TestBrowser } from "../../../test-support/chromium.ts";
import { createTestDatabase } from "../../db/src/testing.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const workspace = fileURLToPath(new URL("../../..", import.meta.url));
const workspaceBin = join(workspace, "node_modules", ".bin");
const readme = readFileSync(join(root, "README.md"), "utf8");
const versions = {
  typescript: (
    JSON.parse(readFileSync(join(workspace, "package.json"), "utf8")) as Record<string, Record<string, string>>
  ).devDependencies?.typescript,
};

/** The first ```ts block after a heading. */
function quickStart(heading: string): string {
  const at = readme.indexOf(`\n${heading}\n`);
  const block = at === -1 ? null : /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block?.[1]) throw new Error(`README: no TypeScript block under "${heading}"`);
  return block[1];
}

const APPS = {
  fastify: {
    heading: "## A complete Fastify integration",
    deps: ["fastify@5", `typescript@${versions.typescript ?? "5"}`, "@types/node@20"],
  },
  express: {
    heading: "## Express",
    deps: ["express@5", "@types/express@5", `typescript@${versions.typescript ?? "5"}`, "@types/node@20"],
  },
} as const;
type AppName = keyof typeof APPS;

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Builds and packs a copy of the package (never racing other tests over packages/sdk/dist); returns the tarball. */
function packSdk(dir: string): string {
  const source = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const copy = join(dir, "sdk");
  mkdirSync(copy);
  for (const item of ["package.json", "README.md", "CHANGELOG.md", "src"])
    cpSync(join(root, item), join(copy, item), { recursive: true });
  const build = JSON.parse(readFileSync(join(root, "tsconfig.build.json"), "utf8")) as { compilerOptions: object };
  writeFileSync(
    join(copy, "tsconfig.build.json"),
    JSON.stringify({
      extends: join(workspace, "tsconfig.base.json"),
      compilerOptions: { ...build.compilerOptions, typeRoots: [join(workspace, "node_modules", "@types")] },
      include: ["src"],
    }),
  );
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"));
  const env = { ...process.env, PATH: `${workspaceBin}:${process.env.PATH}` };
  execFileSync("sh", ["-c", source.scripts.build ?? "false"], { cwd: copy, env, stdio: "pipe" });
  execFileSync("pnpm", ["pack", "--pack-destination", dir], { cwd: copy, env, stdio: "pipe" });
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error("pnpm pack wrote no tarball");
  return join(dir, tarball);
}

/** The key of an install: the package's sources and manifest, and the app's dependency list. */
function installKey(name: AppName): string {
  const hash = createHash("sha256");
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else hash.update(full.slice(root.length)).update(readFileSync(full));
    }
  };
  walk(join(root, "src"));
  for (const file of ["package.json", "tsconfig.build.json"]) hash.update(readFileSync(join(root, file)));
  return hash.update(APPS[name].deps.join(" ")).digest("hex").slice(0, 16);
}

/**
 * A fresh app: package.json and node_modules from `npm install <tarball> <deps>` in a directory of its own, kept under
 * the install key (an unchanged SDK is neither rebuilt nor reinstalled); then the README's quick start as app.ts,
 * type-checked and compiled by the app's own tsc.
 */
async function freshApp(name: AppName, tarball: () => string): Promise<string> {
  const app = join(tmpdir(), `tessera-sdk-fresh-${name}-${installKey(name)}`);
  if (!existsSync(join(app, "node_modules", "@tessera", "sdk", "package.json"))) {
    const staging = `${app}.${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging);
    writeFileSync(
      join(staging, "package.json"),
      JSON.stringify({ name: `fresh-${name}-app`, private: true, type: "module" }),
    );
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball(), ...APPS[name].deps], {
      cwd: staging,
      env: { ...process.env, npm_config_loglevel: "error" },
    });
    // Older installs (of earlier sources) go.
    for (const old of readdirSync(tmpdir()).filter((f) => f.startsWith(`tessera-sdk-fresh-${name}-`)))
      if (!old.includes(".")) rmSync(join(tmpdir(), old), { recursive: true, force: true });
    renameSync(staging, app);
  }
  rmSync(join(app, "dist"), { recursive: true, force: true });
  writeFileSync(join(app, "app.ts"), quickStart(APPS[name].heading));
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        module: "NodeNext",
        moduleResolution: "NodeNext",
        target: "ES2022",
        strict: true,
        outDir: "dist",
      },
      include: ["app.ts"],
    }),
  );
  await run(join(app, "node_modules", ".bin", "tsc"), ["-p", app], { cwd: app });
  return app;
}

/** Runs the compiled app with plain Node; resolves once it answers on its port. */
async function startApp(app: string, env: Record<string, string>, url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(app, "dist", "app.js")], {
    cwd: app,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the fresh app exited (${child.exitCode}): ${output}`);
    if (
      await fetch(url).then(
        () => true,
        () => false,
      )
    )
      return child;
    await new Promise((resolveWait) => setTimeout(resolveWait, 200));
  }
  child.kill();
  throw new Error(`the fresh app did not answer on ${url}: ${output}`);
}

let dir: string;
let demo: RunningDemo;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let browser: TestBrowser;
const apps: Partial<Record<AppName, { dir: string; url: string; child?: ChildProcess }>> = {};

beforeAll(async () => {
  const started = Date.now();
  dir = mkdtempSync(join(tmpdir(), "tessera-sdk-packed-"));
  let tarball: string | undefined;
  const packed = () => {
    tarball ??= packSdk(dir);
    return tarball;
  };
  // Before Tessera starts: on a loaded 2-core machine, npm and tsc running beside Tessera's start-up can exceed its
  // plugin timeout.
  const [fastifyDir, expressDir] = await Promise.all([freshApp("fastify", packed), freshApp("express", packed)]);

  database = await createTestDatabase();
  const [authPort, webPort, gamePort] = [await freePort(), await freePort(), await freePort()];
  demo = await startDemo({
    env: {
      NODE_ENV: "test",
      PORT: String(authPort),
      DATA_DIR: join(dir, "data"),
      TESSERA_MASTER_KEY: "11".repeat(32),
      LOG_LEVEL: "silent",
      RATE_LIMIT_ENABLED: "false",
    },
    database,
    publicHost: "127.0.0.1",
    webPort,
    gamePort,
    stateFile: false,
  });
  for (const [name, appDir] of [
    ["fastify", fastifyDir],
    ["express", expressDir],
  ] as const) {
    const port = await freePort();
    const url = `http://localhost:${port}`;
    // Registered as the README says (a third-party client: Tessera asks for consent).
    const { client, clientSecret } = await createClient(
      demo.tessera.ctx,
      {
        name: `Fresh ${name} app`,
        redirectUris: [`${url}/auth/callback`],
        postLogoutRedirectUris: [`${url}/`],
        backchannelLogoutUri: `${url}/auth/backchannel-logout`,
      },
      { actorId: null, meta: { ip: undefined, userAgent: undefined }, via: "test" },
    );
    const child = await startApp(
      appDir,
      {
        APP_URL: url,
        PORT: String(port),
        TESSERA_ISSUER: demo.issuer,
        TESSERA_CLIENT_ID: client.clientId,
        TESSERA_CLIENT_SECRET: clientSecret,
        APP_SECRET: "a".repeat(43),
      },
      url,
    );
    apps[name] = { dir: appDir, url, child };
  }
  browser = await launchTestBrowser("sdk-packed", { width: 1000, height: 760 });
  console.log(`packed, installed, compiled, Tessera and both apps started in ${Date.now() - started} ms`);
}, 300_000);

afterAll(async () => {
  for (const app of Object.values(apps)) app?.child?.kill();
  await browser?.close();
  await demo?.close();
  await database?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the packed SDK in fresh apps written as the README's quick starts", () => {
  it("the apps are the README's code blocks as printed, installed from the tarball, not from the workspace", () => {
    for (const name of ["fastify", "express"] as const) {
      const app = apps[name];
      if (!app) throw new Error(`${name} app not started`);
      expect(readFileSync(join(app.dir, "app.ts"), "utf8")).toBe(quickStart(APPS[name].heading));
      const installed = JSON.parse(
        readFileSync(join(app.dir, "node_modules", "@tessera", "sdk", "package.json"), "utf8"),
      ) as { exports: Record<string, Record<string, string>> };
      expect(installed.exports["."]).toEqual({ types: "./dist/index.d.ts", import: "./dist/index.js" });
      expect(existsSync(join(app.dir, "node_modules", "@tessera", "sdk", "src"))).toBe(false);
    }
  });

  for (const name of ["fastify", "express"] as const) {
    it(`${name}: signs a user in through Tessera's sign-in and consent pages and greets them`, async () => {
      const started = Date.now();
      const app = apps[name];
      if (!app) throw new Error(`${name} app not started`);
      await browser.context.clearCookies(); // a new visitor: no Tessera session from the other app's test
      const page = await browser.context.newPage();
      await page.goto(`${app.url}/`);
      expect(await page.locator("body").textContent()).toBe("Sign in at /auth/login");
      await page.goto(`${app.url}/auth/login`);
      await page.waitForURL(`${demo.issuer}/login**`);
      await browser.shot(page, `${name}-01-sign-in`);
      await page.locator("#email").fill(demo.user.email);
      await page.locator("#password").fill(demo.user.password);
      await page.locator("button[type=submit]").click();
      // The consent page (GET /authorize renders it for a third-party app).
      await page.getByRole("button", { name: "Allow" }).waitFor();
      expect(page.url().startsWith(`${demo.issuer}/`)).toBe(true);
      await browser.shot(page, `${name}-02-consent`);
      await page.getByRole("button", { name: "Allow" }).click();
      await page.waitForURL(`${app.url}/`);
      expect(await page.locator("body").textContent()).toBe("Hello Demo Player");
      await browser.shot(page, `${name}-03-signed-in`);
      await page.goto(`${app.url}/api/me`);
      expect(JSON.parse((await page.locator("body").textContent()) ?? "null")).toMatchObject({
        email: demo.user.email,
        name: "Demo Player",
      });
      const refund = await page.evaluate(async () => {
        const response = await fetch("/api/refunds", { method: "POST" });
        return { status: response.status, body: await response.json() };
      });
      expect(refund).toEqual({ status: 403, body: { code: "FORBIDDEN", message: expect.any(String) } });
      await page.close();
      console.log(`${name}: signed in through the fresh app in ${Date.now() - started} ms`);
    });
  }
});
