import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

// The layering of README "Layout": libraries/ (the rules) and queries/ (SQL) run under the HTTP server, the CLI and
// tests alike, so they never import Fastify or an @fastify plugin, and never reach back up into http/ or routes/.
const src = join(import.meta.dirname, "../../src");

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? tsFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1] ?? "");
}

describe("layer boundaries", () => {
  for (const layer of ["libraries", "queries"]) {
    it(`${layer}/ imports neither Fastify nor http/ or routes/`, () => {
      const offending = tsFiles(join(src, layer)).flatMap((file) =>
        importsOf(file)
          .filter(
            (spec) =>
              spec === "fastify" ||
              spec.startsWith("fastify-") ||
              spec.startsWith("@fastify/") ||
              /(^|\/)\.\.\/(?:\.\.\/)*(http|routes)\//.test(spec),
          )
          .map((spec) => `${relative(src, file)} → ${spec}`),
      );
      expect(offending).toEqual([]);
    });
  }
});
