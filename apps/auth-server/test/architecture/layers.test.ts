import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * The layering of src/ (README "Layout"), checked over the import graph: every import, export-from, `import type` and
 * dynamic `import()` of every source file, as the TypeScript compiler's own pre-processor reads them.
 *
 *   routes/ → libraries/ → queries/ → @tessera/db      (never the other way)
 *   http/ may use libraries/; libraries/ never import http/ or routes/ (no loop between the two)
 *   libraries/ and queries/ are framework-free: no `fastify`, `fastify-*` or `@fastify/*` import
 */

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/** Layer of a file or import target under src/, by its first path segment (`libraries/oauth/x.ts` → `libraries`). */
function layerOf(srcPath: string): string {
  return srcPath.split("/")[0] ?? srcPath;
}

/** Which layers each layer must never import. Shared modules (errors/, config/, context.ts, views/) are free. */
const FORBIDDEN: Record<string, string[]> = {
  libraries: ["routes", "http", "cli", "app.ts", "server.ts"],
  queries: ["libraries", "routes", "http", "cli", "app.ts", "server.ts"],
  errors: ["libraries", "queries", "routes", "http", "cli"],
  http: ["routes", "cli"],
};

/** Framework packages libraries/ and queries/ must not import. */
const FRAMEWORK = /^(fastify($|[-/])|@fastify\/)/;
const FRAMEWORK_FREE = new Set(["libraries", "queries"]);

/**
 * Known violations, as "file → import". Each entry must still exist (a fixed one fails the check until it is removed
 * here), and nothing else may be added without a reason next to it.
 */
const ALLOWED = new Set<string>([]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every module specifier a file imports (static, type-only, re-exports and dynamic imports). */
function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The violations of one file's imports; `file` is relative to src/. */
function violations(file: string, specifiers: string[]): string[] {
  const from = layerOf(file);
  const found: string[] = [];
  for (const specifier of specifiers) {
    if (specifier.startsWith(".")) {
      const target = relative(SRC, resolve(SRC, dirname(file), specifier));
      if (target.startsWith("..")) continue;
      const to = layerOf(target);
      if (to !== from && FORBIDDEN[from]?.includes(to)) found.push(`${file} → ${target}`);
    } else if (FRAMEWORK_FREE.has(from) && FRAMEWORK.test(specifier)) {
      found.push(`${file} → ${specifier}`);
    }
  }
  return found;
}

describe("architecture: layers of src/", () => {
  const files = sourceFiles(SRC).map((path) => relative(SRC, path));
  const all = files.flatMap((file) => violations(file, importsOf(readFileSync(join(SRC, file), "utf8"))));

  it("reads the whole source tree", () => {
    // A wrong SRC or a broken walk would make every other assertion here vacuous.
    expect(files.length).toBeGreaterThan(80);
    expect(files).toContain("libraries/sessions.ts");
    expect(files).toContain("routes/oauth/index.ts");
  });

  it("has no back edge and no framework import outside the allowlist", () => {
    expect(all.filter((v) => !ALLOWED.has(v))).toEqual([]);
  });

  it("lists only violations that still exist in the allowlist", () => {
    expect([...ALLOWED].filter((v) => !all.includes(v))).toEqual([]);
  });

  it("sees every kind of import and every kind of back edge", () => {
    const source = [
      `import type { FastifyReply } from "fastify";`,
      `import { x } from "../routes/admin/clients.ts";`,
      `export { y } from "../http/errors.ts";`,
      `const z = await import("../queries/sessions.ts");`,
      `import "@fastify/cookie";`,
    ].join("\n");
    expect(violations("libraries/example.ts", importsOf(source))).toEqual([
      "libraries/example.ts → fastify",
      "libraries/example.ts → routes/admin/clients.ts",
      "libraries/example.ts → http/errors.ts",
      "libraries/example.ts → @fastify/cookie",
    ]);
    expect(violations("queries/example.ts", [`../libraries/clock.ts`, "drizzle-orm", "fastify-plugin"])).toEqual([
      "queries/example.ts → libraries/clock.ts",
      "queries/example.ts → fastify-plugin",
    ]);
    // Forward edges are fine.
    expect(violations("routes/oauth/x.ts", ["../../libraries/sessions.ts", "fastify", "../../http/errors.ts"])).toEqual(
      [],
    );
    expect(violations("http/x.ts", ["../libraries/clock.ts", "fastify"])).toEqual([]);
  });
});
