// pnpm bench: requests/second of a Fastify route protected by @tessera/sdk (valid access cookie) against the same
// route unprotected, measured in the same run on loopback with autocannon, reported as a ratio. Exits 1 when the
// protected route keeps less than 85% of the unprotected throughput. Total time: about 50 seconds.
//
// Both routes get the very same request (the same Cookie header), so the difference is what the SDK does with it,
// not the extra header bytes. The two servers run in a child process; autocannon runs here. The machine is shared (2 cores, other jobs come and
// go), so the run is many short alternating pairs (unprotected 1 s, then protected 1 s): each pair sees about the
// same background load, and the verdict is the median of the per-pair ratios, which one disturbed pair cannot move.
// The plain averages are printed too, and the server's own CPU time per request on each side (from
// process.cpuUsage() in the server process), which load on the rest of the machine barely affects.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";

const TARGET_RATIO = 0.85;
const WARMUP_SECONDS = 3;
const ROUND_SECONDS = 1;
const ROUNDS = 20;
const CONNECTIONS = 50;

const root = fileURLToPath(new URL("..", import.meta.url));
const child = spawn(process.execPath, ["--import", "tsx", "bench/server.ts"], {
  cwd: root,
  stdio: ["ignore", "pipe", "inherit", "ipc"],
});
/** The server process's CPU time so far, in microseconds. */
function serverCpu() {
  return new Promise((resolve) => {
    child.once("message", (usage) => resolve(usage.user + usage.system));
    child.send("cpu");
  });
}
const stop = () => child.kill("SIGTERM");
process.on("exit", stop);

const info = await new Promise((resolve, reject) => {
  const lines = createInterface({ input: child.stdout });
  lines.once("line", (line) => resolve(JSON.parse(line)));
  child.once("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
});

const cpuPerRequest = { bare: [], protected: [] };

async function measure(side, port, cookie, duration) {
  const before = await serverCpu();
  const { rps, requests } = await run(port, cookie, duration);
  cpuPerRequest[side].push({ cpu: (await serverCpu()) - before, requests });
  return rps;
}

function run(port, cookie, duration) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}/hello`,
        connections: CONNECTIONS,
        duration,
        headers: cookie ? { cookie } : {},
      },
      (error, result) => {
        if (error) return reject(error);
        // Anything but 200 means the SDK refused the cookie: the numbers would be meaningless.
        if (result.non2xx > 0 || result.errors > 0) {
          return reject(new Error(`port ${port}: ${result.non2xx} non-2xx responses, ${result.errors} errors`));
        }
        resolve({ rps: result.requests.total / duration, requests: result.requests.total });
      },
    );
  });
}

// Sanity check before measuring: the protected route must answer 200 with the cookie and 401 without.
const withCookie = await fetch(`http://127.0.0.1:${info.protected}/hello`, { headers: { cookie: info.cookie } });
const without = await fetch(`http://127.0.0.1:${info.protected}/hello`);
if (withCookie.status !== 200 || without.status !== 401) {
  console.error(`protected route answered ${withCookie.status} with the cookie and ${without.status} without`);
  process.exit(1);
}

console.log(`warm-up: ${WARMUP_SECONDS}s each`);
await run(info.bare, info.cookie, WARMUP_SECONDS);
await run(info.protected, info.cookie, WARMUP_SECONDS);
console.log(`measuring: ${ROUNDS} alternating pairs of ${ROUND_SECONDS}s`);

const bare = [];
const guarded = [];
const ratios = [];
for (let round = 1; round <= ROUNDS; round++) {
  // Alternate which side goes first, so neither always follows the other.
  if (round % 2) {
    bare.push(await measure("bare", info.bare, info.cookie, ROUND_SECONDS));
    guarded.push(await measure("protected", info.protected, info.cookie, ROUND_SECONDS));
  } else {
    guarded.push(await measure("protected", info.protected, info.cookie, ROUND_SECONDS));
    bare.push(await measure("bare", info.bare, info.cookie, ROUND_SECONDS));
  }
  ratios.push(guarded.at(-1) / bare.at(-1));
  console.log(
    `pair ${String(round).padStart(2)}: unprotected ${bare.at(-1).toFixed(0).padStart(6)} req/s, ` +
      `protected ${guarded.at(-1).toFixed(0).padStart(6)} req/s, ratio ${ratios.at(-1).toFixed(3)}`,
  );
}
stop();

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const ratio = median(ratios);
console.log("");
console.log(`unprotected route:            ${mean(bare).toFixed(0)} req/s (mean of ${ROUNDS} x ${ROUND_SECONDS}s)`);
console.log(`protected (valid access JWT): ${mean(guarded).toFixed(0)} req/s`);
console.log(`ratio of means: ${(mean(guarded) / mean(bare)).toFixed(3)}`);
const perRequest = (runs) => runs.reduce((a, r) => a + r.cpu, 0) / runs.reduce((a, r) => a + r.requests, 0);
const cpuBare = perRequest(cpuPerRequest.bare);
const cpuProtected = perRequest(cpuPerRequest.protected);
console.log(
  `server CPU per request: unprotected ${cpuBare.toFixed(1)} µs, protected ${cpuProtected.toFixed(1)} µs ` +
    `(a CPU-bound server would keep ${(cpuBare / cpuProtected).toFixed(3)} of its throughput)`,
);
console.log(`ratio (median of pairs): ${ratio.toFixed(3)} (target >= ${TARGET_RATIO})`);
if (ratio < TARGET_RATIO) {
  console.error("FAIL: the protected route keeps less than 85% of the unprotected throughput");
  process.exit(1);
}
console.log("PASS");
process.exit(0);
