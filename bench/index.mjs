// pnpm bench [NAME ...]: every benchmark, or the named ones.
//   sdk         the SDK's protected route against the same route unprotected (bench/run.mjs)
//   oauth       all of the OAuth benchmarks below (bench/oauth.mjs)
//   refresh | introspect | userinfo | password | authorize | discovery   one of them
//   explain     query plans of the hot and sweeper queries on ~1M refresh tokens (bench/explain.ts)
//   rotation    PostgreSQL's CPU and WAL per one-statement rotation, with and without what 0006 dropped (bench/rotation.ts)
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const OAUTH = ["refresh", "introspect", "userinfo", "password", "authorize", "discovery"];
const args = process.argv.slice(2);
const names = args.length ? args : ["sdk", "oauth"];
const unknown = names.filter((n) => !["sdk", "oauth", "explain", "rotation", ...OAUTH].includes(n));
if (unknown.length) {
  console.error(`unknown benchmark: ${unknown.join(", ")} (sdk, oauth, explain, rotation, ${OAUTH.join(", ")})`);
  process.exit(2);
}
const run = (argv) => spawnSync(process.execPath, argv, { cwd: root, stdio: "inherit" }).status ?? 1;
let failed = 0;
if (names.includes("sdk")) failed ||= run(["bench/run.mjs"]);
const oauth = names.includes("oauth") ? [] : names.filter((n) => OAUTH.includes(n));
if (names.includes("oauth") || oauth.length) failed ||= run(["bench/oauth.mjs", ...oauth]);
if (names.includes("explain")) failed ||= run(["--import", "tsx", "bench/explain.ts"]);
if (names.includes("rotation")) failed ||= run(["--import", "tsx", "bench/rotation.ts"]);
process.exit(failed);
