/**
 * The built package: `pnpm build` (tsc -p tsconfig.build.json) emits dist/, and a plain Node process (no "development"
 * condition, no tsx) importing @tessera/sdk, @tessera/sdk/fastify and @tessera/sdk/node gets the compiled JavaScript
 * through the exports map, with a declaration file beside each entry point.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const packageJson = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as {
  scripts: Record<string, string>;
  exports: Record<string, Record<string, string>>;
  publishConfig: { exports: Record<string, Record<string, string>> };
};

beforeAll(() => {
  // The package's own build script, as `pnpm build` runs it (through the shell, with the workspace's tsc on PATH).
  const bin = `${root}node_modules/.bin:${fileURLToPath(new URL("../../../node_modules/.bin", import.meta.url))}`;
  execFileSync("sh", ["-c", packageJson.scripts.build ?? "false"], {
    cwd: root,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    stdio: "pipe",
  });
}, 120_000);

/** Imports the three entry points in a child Node process from the package itself (self-reference by name). */
function importBuilt(): Record<string, { url: string; exports: string[] }> {
  const script = `
    const out = {};
    for (const name of ["@tessera/sdk", "@tessera/sdk/fastify", "@tessera/sdk/node"]) {
      const module = await import(name);
      out[name] = { url: import.meta.resolve(name), exports: Object.keys(module).sort() };
    }
    const { createTessera } = await import("@tessera/sdk");
    const tessera = createTessera({
      issuer: "https://id.example.com", clientId: "shop", clientSecret: "s", appSecret: "x".repeat(32),
      redirectUri: "https://shop.example.com/auth/callback", cookies: { secure: true, prefix: "shop" },
    });
    out.cookieNames = { url: "", exports: Object.values(tessera.cookieNames) };
    process.stdout.write(JSON.stringify(out));
  `;
  const output = execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root, encoding: "utf8" });
  return JSON.parse(output) as Record<string, { url: string; exports: string[] }>;
}

describe("the built package (dist/)", () => {
  it("plain Node resolves each entry point to dist/*.js and gets the public API", () => {
    const built = importBuilt();
    expect(built["@tessera/sdk"]?.url).toMatch(/\/packages\/sdk\/dist\/index\.js$/);
    expect(built["@tessera/sdk/fastify"]?.url).toMatch(/\/packages\/sdk\/dist\/fastify\.js$/);
    expect(built["@tessera/sdk/node"]?.url).toMatch(/\/packages\/sdk\/dist\/node\.js$/);
    expect(built["@tessera/sdk"]?.exports).toEqual(
      expect.arrayContaining(["createTessera", "TesseraClient", "TesseraError", "createHandler", "authInputFrom"]),
    );
    expect(built["@tessera/sdk/fastify"]?.exports).toEqual([
      "TesseraError",
      "requirePermission",
      "requireUser",
      "tesseraPlugin",
    ]);
    expect(built["@tessera/sdk/node"]?.exports).toEqual([
      "TesseraError",
      "authenticateUpgrade",
      "requirePermission",
      "requireUser",
      "tesseraMiddleware",
    ]);
    expect(built.cookieNames?.exports).toEqual([
      "__Host-shop-at",
      "__Host-shop-rt",
      "__Host-shop-idt",
      "__Host-shop-tx",
    ]);
  });

  it("every export names a built file: types and import in dist/, and the published map has no source condition", () => {
    for (const [entry, conditions] of Object.entries(packageJson.exports)) {
      const published = packageJson.publishConfig.exports[entry];
      expect(published).toEqual({ types: conditions.types, import: conditions.import });
      for (const file of [conditions.types, conditions.import]) {
        expect(file).toMatch(/^\.\/dist\//);
        expect(existsSync(`${root}${file}`)).toBe(true);
      }
      expect(readFileSync(`${root}${conditions.import}`, "utf8")).not.toMatch(/from "\.[^"]*\.ts"/);
    }
  });
});
