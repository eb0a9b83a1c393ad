import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The compiled server as `pnpm start` and the Docker image run it: the build output of `pnpm install` (this suite
// does not build; a missing or broken dist/ fails it). On the embedded database in a fresh DATA_DIR, or with
// TEST_DATABASE_URL (CI's PostgreSQL run) on a fresh, unmigrated PostgreSQL database: either way the compiled server
// finds and applies the migrations itself.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const readJson = (path: string) => JSON.parse(readFileSync(join(root, path), "utf8"));
const startLine: string = readJson("package.json").scripts.start;
/** No environment of the test runner leaks in: no NODE_OPTIONS that could carry a TypeScript loader. */
const cleanEnv = { PATH: process.env.PATH };
const ISSUER = "http://tessera.test";

describe("the start line", () => {
  it("is `node [flags] <entry>.js`, with no TypeScript loader, so a process manager can run the same line", () => {
    expect(startLine).toMatch(/^node( --[a-z-]+(=\S+)?)* \S+\.js$/);
    expect(startLine).not.toMatch(/tsx|--import|--loader|--require|--experimental/);
  });

  it("is the line the auth-server's own start script and the Docker image run, flag for flag", () => {
    const flags = startLine.split(" ").slice(1, -1);
    expect(flags.length).toBeGreaterThan(0);
    expect(readJson("apps/auth-server/package.json").scripts.start).toBe(`node ${flags.join(" ")} dist/server.js`);
    const cmd = readFileSync(join(root, "docker/Dockerfile"), "utf8").match(/^CMD (\[.*\])$/m);
    expect(JSON.parse(cmd?.[1] ?? "null")).toEqual(["node", ...flags, "dist/server.js"]);
  });

  it("keeps tsx out of the auth-server's production dependencies", () => {
    const pkg = readJson("apps/auth-server/package.json");
    expect(pkg.dependencies.tsx).toBeUndefined();
    expect(pkg.devDependencies.tsx).toBeDefined();
  });
});

describe("the compiled server", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tessera-build-"));
  const adminUrl = process.env.TEST_DATABASE_URL;
  const database = adminUrl
    ? { name: `tessera_build_${randomBytes(6).toString("hex")}`, url: new URL(adminUrl) }
    : null;
  let child: ChildProcess;
  let base: string;
  let output = "";

  beforeAll(async () => {
    const databaseEnv: Record<string, string> = { DATA_DIR: dataDir };
    if (adminUrl && database) {
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`create database ${database.name}`);
      await admin.end();
      database.url.pathname = `/${database.name}`;
      databaseEnv.DATABASE_URL = database.url.toString();
    }
    const [command, ...args] = startLine.split(" ");
    expect(command).toBe("node");
    child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...cleanEnv, PORT: "0", HOST: "127.0.0.1", ISSUER, LOG_LEVEL: "info", ...databaseEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    base = await new Promise<string>((resolvePromise, reject) => {
      // A first start on PGlite (initdb in WebAssembly, migrations) takes seconds alone, over 30 s on a loaded CI machine.
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 100_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = output.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
        if (match?.[1]) {
          clearTimeout(timer);
          resolvePromise(match[1]);
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited early (code ${code}):\n${output}`));
      });
    });
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}.lock`, { force: true });
    if (adminUrl && database) {
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${database.name} with (force)`);
      await admin.end();
    }
  });

  it("runs as plain node: no loader in its command line", () => {
    // Linux shows a process's argv in /proc; elsewhere the start-line test above covers it.
    const cmdline = `/proc/${child.pid}/cmdline`;
    if (existsSync(cmdline)) {
      const argv = readFileSync(cmdline, "utf8").split("\0").filter(Boolean);
      expect(argv.slice(1)).toEqual(startLine.split(" ").slice(1));
    }
  });

  it("migrates its database and answers /readyz 200", async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ready", database: adminUrl ? "postgres" : "pglite" });
  });

  it("serves the discovery document", async () => {
    const res = await fetch(`${base}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { issuer: string; jwks_uri: string };
    expect(body.issuer).toBe(ISSUER);
    expect(body.jwks_uri).toBe(`${ISSUER}/jwks`);
  });

  it("renders the hosted sign-in page from the compiled templates, with its stylesheet", async () => {
    const page = await fetch(`${base}/login`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await page.text();
    expect(html).toContain("<title>Sign in · Tessera</title>");
    expect(html).toContain('href="/assets/tessera.css"');
    const css = await fetch(`${base}/assets/tessera.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect((await css.text()).length).toBeGreaterThan(100);
  });
});

describe("the tessera bin", () => {
  it("runs the compiled CLI", () => {
    const bin = JSON.parse(readFileSync(join(root, "apps/auth-server/package.json"), "utf8")).bin.tessera;
    const result = spawnSync(process.execPath, [join(root, "apps/auth-server", bin), "--help"], {
      cwd: root,
      env: cleanEnv,
      encoding: "utf8",
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("Usage: tessera <command> [options]");
  });
});
