/**
 * The SDK as a real package: `pnpm pack` (as a publish would pack it, publishConfig applied) and the tarball put into a
 * fresh app outside the workspace, where plain Node imports each entry point and tsc type-checks an import of each.
 *
 * The install is done without the network: `pnpm install --offline` cannot resolve the tarball's dependencies here
 * (pnpm's metadata cache holds no entry for fastify, zod, cookie…: ERR_PNPM_NO_OFFLINE_META), so the tarball is
 * unpacked into the app's node_modules/@tessera/sdk and its dependencies are linked to the copies this workspace
 * installed, exactly the layout an install produces. What this proves: the tarball's file list, its exports map (types
 * and JavaScript for each entry, no source condition), and that the built files need nothing outside the tarball but
 * its declared dependencies.
 */
import { execFileSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const workspaceBin = fileURLToPath(new URL("../../../node_modules/.bin", import.meta.url));
const ENTRIES = ["@tessera/sdk", "@tessera/sdk/fastify", "@tessera/sdk/node", "@tessera/sdk/redis"];

let dir: string;
let app: string;
let files: string[];
let sdkDir: string;
let packed: {
  version: string;
  private?: boolean;
  exports: Record<string, Record<string, string>>;
  files: string[];
  engines: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  dependencies: Record<string, string>;
};

beforeAll(() => {
  // Built and packed from a copy of the package, so this file never races dist.test.ts over packages/sdk/dist.
  const source = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { scripts: Record<string, string> };
  dir = mkdtempSync(join(tmpdir(), "tessera-sdk-pack-"));
  const copy = join(dir, "sdk");
  mkdirSync(copy);
  for (const item of ["package.json", "README.md", "CHANGELOG.md", "src"])
    cpSync(`${root}${item}`, join(copy, item), { recursive: true });
  const build = JSON.parse(readFileSync(`${root}tsconfig.build.json`, "utf8")) as { compilerOptions: object };
  writeFileSync(
    join(copy, "tsconfig.build.json"),
    JSON.stringify({
      extends: `${root}../../tsconfig.base.json`,
      compilerOptions: { ...build.compilerOptions, typeRoots: [`${root}../../node_modules/@types`] },
      include: ["src"],
    }),
  );
  symlinkSync(`${root}node_modules`, join(copy, "node_modules"));
  const env = { ...process.env, PATH: `${workspaceBin}:${process.env.PATH}` };
  execFileSync("sh", ["-c", source.scripts.build ?? "false"], { cwd: copy, env, stdio: "pipe" });
  execFileSync("pnpm", ["pack", "--pack-destination", dir], { cwd: copy, env, stdio: "pipe" });
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error("pnpm pack wrote no tarball");
  files = execFileSync("tar", ["tzf", join(dir, tarball)], { encoding: "utf8" })
    .trim()
    .split("\n")
    .sort();

  app = join(dir, "app");
  const sdk = join(app, "node_modules", "@tessera", "sdk");
  sdkDir = sdk;
  mkdirSync(sdk, { recursive: true });
  execFileSync("tar", ["xzf", join(dir, tarball), "-C", sdk, "--strip-components=1"]);
  packed = JSON.parse(readFileSync(join(sdk, "package.json"), "utf8"));
  // The tarball's dependencies and optional peers, plus Node's types for tsc, as an install would lay them out.
  const links = [...Object.keys(packed.dependencies), ...Object.keys(packed.peerDependencies)];
  for (const name of links) symlinkSync(realpathSync(`${root}node_modules/${name}`), join(app, "node_modules", name));
  mkdirSync(join(app, "node_modules", "@types"));
  symlinkSync(realpathSync(`${root}../../node_modules/@types/node`), join(app, "node_modules", "@types", "node"));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "pack-test-app", private: true, type: "module" }));
}, 180_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the packed @tessera/sdk", () => {
  it("holds package.json, the README, the changelog and dist/ only (no sources, tests or config)", () => {
    const top = ["package/package.json", "package/README.md", "package/CHANGELOG.md"];
    for (const file of top) expect(files).toContain(file);
    const other = files.filter((f) => !f.startsWith("package/dist/") && !top.includes(f));
    expect(other).toEqual([]);
    for (const entry of ["index", "fastify", "node", "redis"]) {
      expect(files).toContain(`package/dist/${entry}.js`);
      expect(files).toContain(`package/dist/${entry}.d.ts`);
    }
  });

  it("is publishable (not private), with a version and the changelog entry for that version", () => {
    expect(packed.private).toBeUndefined();
    expect(packed.version).toMatch(/^\d+\.\d+\.\d+$/);
    const changelog = readFileSync(join(sdkDir, "CHANGELOG.md"), "utf8");
    expect(changelog).toContain(`\n## ${packed.version}\n`);
    // The packed README points at it.
    expect(readFileSync(join(sdkDir, "README.md"), "utf8")).toContain("[CHANGELOG.md](CHANGELOG.md)");
  });

  it("publishes an exports map with types and JavaScript for each entry point, engines and peer dependencies", () => {
    expect(packed.exports).toEqual({
      ".": { types: "./dist/index.d.ts", import: "./dist/index.js" },
      "./fastify": { types: "./dist/fastify.d.ts", import: "./dist/fastify.js" },
      "./node": { types: "./dist/node.d.ts", import: "./dist/node.js" },
      "./redis": { types: "./dist/redis.d.ts", import: "./dist/redis.js" },
    });
    expect(packed.files).toEqual(["dist", "README.md", "CHANGELOG.md"]);
    expect(packed.engines.node).toMatch(/^>=\d+/);
    expect(packed.peerDependencies).toMatchObject({ fastify: "5.x", ioredis: expect.any(String) });
    expect(packed.peerDependenciesMeta.ioredis?.optional).toBe(true);
    expect(Object.values(packed.dependencies).some((v) => v.startsWith("workspace:"))).toBe(false);
  });

  it("plain Node in an app outside the workspace imports every entry point from the tarball", () => {
    const script = `
      const out = {};
      for (const name of ${JSON.stringify(ENTRIES)}) {
        const module = await import(name);
        out[name] = { url: import.meta.resolve(name), exports: Object.keys(module).sort() };
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const output = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: app,
      encoding: "utf8",
    });
    const imported = JSON.parse(output) as Record<string, { url: string; exports: string[] }>;
    for (const name of ENTRIES) {
      expect(imported[name]?.url).toContain(`${app}/node_modules/@tessera/sdk/dist/`);
      expect(imported[name]?.url).not.toContain("/packages/sdk/");
    }
    expect(imported["@tessera/sdk"]?.exports).toContain("createTessera");
    expect(imported["@tessera/sdk/fastify"]?.exports).toContain("tesseraPlugin");
    expect(imported["@tessera/sdk/node"]?.exports).toContain("tesseraMiddleware");
    expect(imported["@tessera/sdk/redis"]?.exports).toEqual(["RedisRevokedSessionStore"]);
  });

  it("tsc type-checks an app importing each entry point through the published types", () => {
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          noEmit: true,
        },
        include: ["app.ts"],
      }),
    );
    writeFileSync(
      join(app, "app.ts"),
      `import { createTessera, type TesseraOptions } from "@tessera/sdk";
import { tesseraPlugin } from "@tessera/sdk/fastify";
import { tesseraMiddleware } from "@tessera/sdk/node";
import { RedisRevokedSessionStore } from "@tessera/sdk/redis";
import { Redis } from "ioredis";

const options: TesseraOptions = {
  issuer: "https://id.example.com",
  clientId: "shop",
  clientSecret: "secret",
  appSecret: "x".repeat(32),
  redirectUri: "https://shop.example.com/auth/callback",
  cookies: { secure: true, prefix: "shop" },
  revokedSessions: new RedisRevokedSessionStore({ client: new Redis({ lazyConnect: true }) }),
};
const tessera = createTessera(options);
export const used = [tessera.cookieNames, tesseraPlugin, tesseraMiddleware];
// @ts-expect-error the store needs an ioredis client
new RedisRevokedSessionStore({});
`,
    );
    execFileSync(join(workspaceBin, "tsc"), ["-p", app], { cwd: app, encoding: "utf8" });
  }, 60_000);
});
