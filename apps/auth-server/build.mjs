// Compiles the server and the CLI to JavaScript: dist/server.js and dist/cli.js, plus the templates and static files
// they read at run time (dist/views, dist/public). Run by `pnpm build` and, through turbo, by every `pnpm install`.
//
// esbuild bundles the TypeScript of this app and of @tessera/db (whose package exports point at .ts source) together
// with the npm dependencies into one file per entry point: node then reads one file at start instead of resolving and
// compiling several hundred modules, which is where most of the start-up time went. Native and wasm packages stay
// external and are loaded from node_modules like any dependency.
import { cpSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** Left out of the bundle: native addons and wasm, loaded from files next to their own code. */
const external = [
  "@node-rs/argon2", // native .node addon from a platform package
  "@electric-sql/pglite", // wasm and the Postgres data bundle, read next to its JS
];

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const { dependencies } = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));

/**
 * Bundled CommonJS code that names `__dirname`/`__filename` gets them back, pointing where the file was bundled from
 * (relative to dist/, so the same path holds in the Docker image, whose node_modules has the same layout): pino's
 * transports start worker threads from files in its package, ioredis reads its own package.json. An ES module has
 * neither name, and without this they would throw where they are used.
 */
const commonJsPaths = {
  name: "commonjs-paths",
  setup(esbuild) {
    esbuild.onLoad({ filter: /[\\/]node_modules[\\/].*\.c?js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      if (!/\b__(dirname|filename)\b/.test(source)) return undefined;
      const dir = relative(dist, dirname(args.path)).split("\\").join("/");
      const file = args.path.slice(dirname(args.path).length + 1);
      const prelude =
        `var __dirname = require("node:path").join(__bundleDir, ${JSON.stringify(dir)});` +
        ` var __filename = require("node:path").join(__dirname, ${JSON.stringify(file)});`;
      return { contents: `${prelude}\n${source}`, loader: "js", resolveDir: dirname(args.path) };
    });
  },
};

// An external package is imported from dist/ at run time, so it must be a direct dependency of this package (pnpm
// links only those into apps/auth-server/node_modules, and the production image installs only those).
for (const name of external) {
  if (!dependencies[name]) throw new Error(`build.mjs: external package ${name} is not in dependencies`);
}

const started = performance.now();
rmSync(dist, { recursive: true, force: true });
await build({
  absWorkingDir: here,
  entryPoints: { server: "src/server.ts", cli: "src/cli/main.ts" },
  outdir: "dist",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  external,
  // Bundled CommonJS dependencies call require() for node built-ins; an ES module has no require of its own.
  banner: {
    js: [
      'import { createRequire as __createRequire } from "node:module";',
      'import { fileURLToPath as __fileURLToPath } from "node:url";',
      "const require = __createRequire(import.meta.url);",
      'const __bundleDir = __fileURLToPath(new URL(".", import.meta.url));',
    ].join("\n"),
  },
  plugins: [commonJsPaths],
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
});
cpSync(join(here, "src/views"), join(dist, "views"), { recursive: true, filter: (path) => !path.endsWith(".ts") });
cpSync(join(here, "src/public"), join(dist, "public"), { recursive: true });
console.log(`auth-server: built dist/ in ${Math.round(performance.now() - started)} ms`);
