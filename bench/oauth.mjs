// pnpm bench oauth [refresh|introspect|userinfo|password|authorize ...]: Tessera's OAuth hot paths on real PostgreSQL,
// side by side in one run with node-oidc-provider v9 (in-memory adapter, refresh rotation on, client_secret_basic)
// and with the raw work (the rotation transaction through postgres.js; argon2id verification).
//
// Each server runs in its own process pinned to core 0 (`taskset -c 0`), this load generator on core 1, so a ratio
// compares what one core of server does. The machine is shared: each comparison is many short alternating rounds,
// the verdict is the median of per-round ratios, and the server CPU time per request (process.cpuUsage() inside the
// server) is printed too, which other load barely moves. PostgreSQL is the machine's (BENCH_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/postgres); a throwaway database is created and dropped. Its processes are not
// pinned (it is shared): they run beside both sides, and their CPU per request (all PostgreSQL processes, from /proc)
// is printed beside the server's, since on two cores it decides what both cores have left. BENCH_POSTGRES=own-core
// starts a cluster of the bench's own instead, pinned to this load generator's core (bench/own-postgres.mjs), so the
// servers' core runs the servers alone.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { startOwnPostgres } from "./own-postgres.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const hasTaskset = spawnSync("taskset", ["-c", "0", "true"]).status === 0;

// Re-run pinned to core 1 (the servers get core 0).
if (hasTaskset && !process.env.BENCH_PINNED) {
  const self = spawn("taskset", ["-c", "1", process.execPath, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, BENCH_PINNED: "1" },
  });
  self.on("exit", (code) => process.exit(code ?? 1));
} else {
  await main();
}

async function main() {
  const ALL = ["refresh", "introspect", "userinfo", "password", "authorize", "discovery"];
  const wanted = process.argv.slice(2).filter((a) => ALL.includes(a));
  const benches = wanted.length ? wanted : ALL;
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
  const ROUND_SECONDS = Number(process.env.BENCH_ROUND_SECONDS ?? 2);
  const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
  const CHAINS = 16;
  const agent = new Agent({ keepAlive: true, maxSockets: CHAINS });

  const postgres = createRequire(new URL("../packages/db/package.json", import.meta.url))("postgres");
  // BENCH_POSTGRES=own-core: a cluster of the bench's own, pinned to this load generator's core (bench/own-postgres.mjs),
  // so PostgreSQL does not run on the server's core: the nearest this 2-core machine comes to a database on its own host.
  const ownCore = process.env.BENCH_POSTGRES === "own-core";
  if (ownCore && !hasTaskset) throw new Error("BENCH_POSTGRES=own-core needs taskset");
  const own = ownCore ? await startOwnPostgres({ cores: "1" }) : undefined;
  if (own) console.log(`PostgreSQL ${own.version} of the bench's own, pinned to core 1 (BENCH_POSTGRES=own-core)`);
  process.on("exit", () => own?.stop());
  const adminUrl = own?.url ?? process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const dbName = `tessera_bench_${process.pid}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;

  const children = [];
  // Whatever happens (even an uncaught error), the servers do not outlive this process.
  process.on("exit", () => {
    for (const child of children) child.kill("SIGTERM");
  });
  let tesseraTarget;
  /** Highest RSS seen per server (sampled after every measured round). */
  const maxSeen = { tessera: 0, peer: 0 };
  const cleanup = async () => {
    for (const child of children) child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1500));
    await admin.unsafe(`drop database if exists ${dbName} with (force)`);
    await admin.end();
  };

  try {
    // Tessera is measured as operators run it: the compiled bundle (dist/server.js), rebuilt here so it matches the
    // source. bench/targets/tessera.ts seeds from source and starts `node dist/server.js` as its child.
    const built = spawnSync(process.execPath, ["apps/auth-server/build.mjs"], { cwd: root, stdio: "inherit" });
    if (built.status !== 0) throw new Error("apps/auth-server/build.mjs failed");
    const tessera = await start("tessera", ["--import", "tsx", "bench/targets/tessera.ts"], {
      DATABASE_URL: dbUrl.href,
    });
    tesseraTarget = tessera;
    const peer = await start("peer", ["bench/targets/peer.mjs"]);
    const raw = await start("raw", ["bench/targets/raw.mjs"], { DATABASE_URL: dbUrl.href });
    // The same peer keeping its models in PostgreSQL (its own table in the bench's database): like for like with
    // Tessera's refresh, which the in-memory peer is not. Reported beside the goal's comparison, not instead of it.
    const peerPg = benches.includes("refresh")
      ? await start("peer-pg", ["bench/targets/peer.mjs"], { BENCH_PEER_DATABASE_URL: dbUrl.href })
      : undefined;
    await sleep(2000);
    const idle = { tessera: await rss(tessera), peer: await rss(peer) };
    const results = [];

    if (benches.includes("refresh")) {
      const chains = {
        tessera: await ask(tessera, `chains ${CHAINS}`),
        peer: await ask(peer, `chains ${CHAINS}`),
        peerPg: await ask(peerPg, `chains ${CHAINS}`),
      };
      const sides = {
        tessera: (s) => refreshRound(tessera, chains.tessera.chains, s),
        peer: (s) => refreshRound(peer, chains.peer.chains, s),
        "peer-pg": (s) => refreshRound(peerPg, chains.peerPg.chains, s),
        raw: async (s) => {
          const dbBefore = postgresCpu();
          const { count, cpu } = await ask(raw, `rotate ${s}`);
          const dbAfter = postgresCpu();
          return {
            rps: count / s,
            cpuPerRequest: cpu / count,
            ...(dbBefore === undefined || dbAfter === undefined ? {} : { dbPerRequest: (dbAfter - dbBefore) / count }),
          };
        },
      };
      // BENCH_REFRESH_VS=peer (a comma list of peer, peer-pg, raw; default all three): which sides alternate with
      // Tessera. Each side a round waits through is a pause for the others: with all four, Tessera's round comes after
      // up to 12 s without load, with the peer alone after 2 s.
      const vs = (process.env.BENCH_REFRESH_VS ?? "peer,peer-pg,raw").split(",");
      for (const name of ["peer", "peer-pg", "raw"]) if (!vs.includes(name)) delete sides[name];
      const r = await alternate("refresh_token grant (16 chains)", sides);
      const rows = [
        ["refresh_token grant, 16 chains", "peer", "node-oidc-provider"],
        [
          "refresh_token grant vs the peer on PostgreSQL",
          "peer-pg",
          "node-oidc-provider, PostgreSQL adapter (bench/targets/peer.mjs)",
        ],
        ["refresh_token grant vs the raw rotation transaction", "raw", "UPDATE…RETURNING + INSERT (postgres.js)"],
      ];
      for (const [label, side, sideLabel] of rows) if (r[side]) results.push(ratioRow(r, label, side, sideLabel));
    }
    // A fresh access token for each of these (the refresh bench can outlast Tessera's 300 s access-token lifetime, and
    // node-oidc-provider's in-memory adapter is an LRU that drops old entries under the refresh load).
    const freshAccessTokens = async () => {
      tessera.info.accessToken = (await ask(tessera, "access")).accessToken;
      peer.info.accessToken = (await ask(peer, "access")).accessToken;
    };
    if (benches.includes("introspect")) {
      await freshAccessTokens();
      const body = (t) => `token=${encodeURIComponent(t.info.accessToken)}`;
      const check = async (t) => {
        const response = await fetch(`http://127.0.0.1:${t.info.port}${t.info.paths.introspect}`, {
          method: "POST",
          headers: { authorization: t.info.basic, "content-type": "application/x-www-form-urlencoded" },
          body: body(t),
        });
        const json = await response.json();
        if (!json.active) throw new Error(`${t.name} /introspect: ${JSON.stringify(json)}`);
      };
      await check(tessera);
      await check(peer);
      const cannon = (t) => (s) =>
        cannonRound(t, s, {
          method: "POST",
          path: t.info.paths.introspect,
          headers: { authorization: t.info.basic, "content-type": "application/x-www-form-urlencoded" },
          body: body(t),
        });
      const r = await alternate("/introspect (access token)", { tessera: cannon(tessera), peer: cannon(peer) });
      results.push(ratioRow(r, "/introspect", "peer", "node-oidc-provider"));
    }
    if (benches.includes("userinfo")) {
      await freshAccessTokens();
      const cannon = (t) => (s) =>
        cannonRound(t, s, {
          method: "GET",
          path: t.info.paths.userinfo,
          headers: { authorization: `Bearer ${t.info.accessToken}` },
        });
      const r = await alternate("/userinfo", { tessera: cannon(tessera), peer: cannon(peer) });
      results.push(ratioRow(r, "/userinfo", "peer", "node-oidc-provider"));
    }
    if (benches.includes("discovery")) {
      // No database, no crypto: what each server costs per request before any OAuth work (the HTTP layer).
      const cannon = (t) => (s) => cannonRound(t, s, { method: "GET", path: "/.well-known/openid-configuration" });
      const r = await alternate("GET /.well-known/openid-configuration", {
        tessera: cannon(tessera),
        peer: cannon(peer),
      });
      results.push(ratioRow(r, "discovery document (HTTP layer only)", "peer", "node-oidc-provider"));
    }
    if (benches.includes("password")) {
      const login = (s) => passwordRound(tessera, s);
      const argon = async (s) => {
        const { count, cpu } = await ask(raw, `argon2 ${s}`);
        return { rps: count / s, cpuPerRequest: cpu / count };
      };
      const r = await alternate("password sign-in (POST /api/v1/login)", { tessera: login, raw: argon });
      results.push(ratioRow(r, "password sign-in (POST /api/v1/login)", "raw", "argon2id verify (same cost)"));
    }
    if (benches.includes("authorize")) {
      const silent = await alternate("silent /authorize (session cookie → 302 with a code)", {
        tessera: (s) =>
          cannonRound(tessera, s, {
            method: "GET",
            path: tessera.info.authorizeUrl,
            headers: { cookie: tessera.info.cookie },
            expect302: true,
          }),
      });
      results.push(figureRow(silent, "silent /authorize"));
      const flow = await alternate("/authorize + code redemption", { tessera: (s) => codeRound(tessera, s) });
      results.push(figureRow(flow, "silent /authorize + code redemption (one flow)"));
    }

    console.log("\n| path | Tessera | reference | ratio (median of rounds) |");
    console.log("|---|---|---|---|");
    for (const row of results) console.log(row);
    // And once more after 15 s without load: what an idle server keeps after a busy spell.
    await sleep(15_000);
    const after = { tessera: await rss(tessera), peer: await rss(peer) };
    console.log(
      `\nRSS: Tessera ${mb(idle.tessera)} idle, ${mb(maxSeen.tessera)} peak under load, ${mb(after.tessera)} idle ` +
        `15 s after the load; node-oidc-provider ${mb(idle.peer)} idle, ${mb(maxSeen.peer)} peak, ${mb(after.peer)} after`,
    );
  } finally {
    await cleanup();
  }

  // ---- helpers ----

  function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
  }

  async function start(name, args, env) {
    const command = hasTaskset ? "taskset" : process.execPath;
    const argv = hasTaskset ? ["-c", "0", process.execPath, ...args] : args;
    const child = spawn(command, argv, {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit", "ipc"],
      env: { ...process.env, ...env },
    });
    children.push(child);
    const info = await new Promise((resolve, reject) => {
      // The first JSON line (node-oidc-provider prints its warnings to stdout first).
      const lines = createInterface({ input: child.stdout });
      lines.on("line", (line) => {
        if (!line.startsWith("{")) return;
        lines.close();
        resolve(JSON.parse(line));
      });
      child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
    });
    return { name, child, info };
  }

  function ask(target, message) {
    return new Promise((resolve) => {
      target.child.once("message", resolve);
      target.child.send(message);
    });
  }

  async function cpu(target) {
    const { cpu: usage } = await ask(target, "cpu");
    return { total: usage.user + usage.system, main: usage.main };
  }

  async function rss(target) {
    const { rss: value } = await ask(target, "rss");
    maxSeen[target.name] = Math.max(maxSeen[target.name] ?? 0, value);
    return value;
  }

  function mb(bytes) {
    return `${(bytes / 1024 / 1024).toFixed(0)} MB`;
  }

  /** Runs `fn` with before/after server CPU; returns requests/s and CPU µs per request. */
  async function measured(target, seconds, fn) {
    const before = await cpu(target);
    const loadBefore = process.cpuUsage();
    const dbBefore = postgresCpu();
    const count = await fn();
    const dbAfter = postgresCpu();
    const load = process.cpuUsage(loadBefore);
    const after = await cpu(target);
    if (target.name in maxSeen) await rss(target);
    return {
      rps: count / seconds,
      cpuPerRequest: (after.total - before.total) / count,
      loadPerRequest: (load.user + load.system) / count,
      ...(dbBefore === undefined || dbAfter === undefined ? {} : { dbPerRequest: (dbAfter - dbBefore) / count }),
      // The main thread's share (Tessera's target reports it; the JavaScript, without libuv's pool: argon2).
      ...(after.main === undefined ? {} : { mainPerRequest: (after.main - before.main) / count }),
    };
  }

  /**
   * CPU time (µs) of every PostgreSQL process on this machine, from /proc (clock ticks of 10 ms), or undefined where
   * there is no /proc. The servers' database work happens there, outside their own CPU figures; the machine's other
   * databases are idle during a bench. Backends live as long as the pools' connections, so none is lost mid-round.
   */
  function postgresCpu() {
    let pids;
    try {
      pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
    } catch {
      return undefined;
    }
    let total = 0;
    for (const pid of pids) {
      let stat;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue; // exited meanwhile
      }
      const close = stat.lastIndexOf(")");
      if (stat.slice(stat.indexOf("(") + 1, close) !== "postgres") continue;
      const fields = stat.slice(close + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) * 10_000;
    }
    return total;
  }

  /**
   * One POST over a kept-alive connection (node:http; at most CHAINS per server). The refresh rounds chain each request
   * on the previous answer, so they cannot use autocannon; fetch() cost this process ~0.6-0.7 ms of CPU per request, on
   * the core PostgreSQL also runs on, against ~0.3 ms for node:http (README, eighth pass).
   */
  function post(port, path, headers, body) {
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        {
          host: "127.0.0.1",
          port,
          path,
          method: "POST",
          agent,
          headers: { ...headers, "content-length": Buffer.byteLength(body) },
        },
        (response) => {
          const chunks = [];
          response.on("data", (chunk) => chunks.push(chunk));
          response.on("end", () => resolve({ status: response.statusCode, body: Buffer.concat(chunks).toString() }));
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }

  async function refreshRound(target, chains, seconds) {
    return measured(target, seconds, async () => {
      const until = performance.now() + seconds * 1000;
      let count = 0;
      await Promise.all(
        chains.map(async (_, i) => {
          while (performance.now() < until) {
            const response = await post(
              target.info.port,
              "/token",
              { authorization: target.info.basic, "content-type": "application/x-www-form-urlencoded" },
              `grant_type=refresh_token&refresh_token=${encodeURIComponent(chains[i])}`,
            );
            const json = JSON.parse(response.body);
            if (response.status !== 200) throw new Error(`${target.name} refresh: ${response.body}`);
            chains[i] = json.refresh_token;
            count++;
          }
        }),
      );
      return count;
    });
  }

  async function passwordRound(target, seconds) {
    return measured(target, seconds, async () => {
      const until = performance.now() + seconds * 1000;
      let count = 0;
      await Promise.all(
        target.info.emails.map(async (email) => {
          while (performance.now() < until) {
            const response = await fetch(`http://127.0.0.1:${target.info.port}/api/v1/login`, {
              method: "POST",
              headers: { "content-type": "application/json", origin: target.info.origin },
              body: JSON.stringify({ email, password: target.info.password }),
            });
            await response.arrayBuffer();
            if (response.status !== 200) throw new Error(`${target.name} login answered ${response.status}`);
            count++;
          }
        }),
      );
      return count;
    });
  }

  async function codeRound(target, seconds) {
    return measured(target, seconds, async () => {
      const until = performance.now() + seconds * 1000;
      let count = 0;
      await Promise.all(
        Array.from({ length: CHAINS }, async () => {
          while (performance.now() < until) {
            const authorize = await fetch(`http://127.0.0.1:${target.info.port}${target.info.authorizeUrl}`, {
              headers: { cookie: target.info.cookie },
              redirect: "manual",
            });
            await authorize.arrayBuffer();
            const code = new URL(authorize.headers.get("location") ?? "", "https://x.invalid").searchParams.get("code");
            if (!code) throw new Error(`authorize answered ${authorize.status}`);
            const token = await fetch(`http://127.0.0.1:${target.info.port}/token`, {
              method: "POST",
              headers: { authorization: target.info.basic, "content-type": "application/x-www-form-urlencoded" },
              body: new URLSearchParams({
                grant_type: "authorization_code",
                code,
                redirect_uri: target.info.redirectUri,
                code_verifier: target.info.verifier,
              }).toString(),
            });
            await token.arrayBuffer();
            if (token.status !== 200) throw new Error(`code redemption answered ${token.status}`);
            count++;
          }
        }),
      );
      return count;
    });
  }

  async function cannonRound(target, seconds, request) {
    return measured(target, seconds, async () => {
      const result = await autocannon({
        url: `http://127.0.0.1:${target.info.port}${request.path}`,
        method: request.method,
        headers: request.headers,
        body: request.body,
        connections: CHAINS,
        duration: seconds,
      });
      const bad = request.expect302 ? result.requests.total - (result["3xx"] ?? 0) : result.non2xx + result.errors;
      if (bad > 0) throw new Error(`${target.name} ${request.path}: ${bad} unexpected responses`);
      return result.requests.total;
    });
  }

  /** ROUNDS rounds; in each, every side runs once, in an order that rotates from round to round. */
  async function alternate(title, sides, tessera = tesseraTarget) {
    console.log(`\n${title}: ${ROUNDS} rounds of ${ROUND_SECONDS}s per side`);
    const names = Object.keys(sides);
    // Warm-up, unmeasured: BENCH_WARMUP_SECONDS per side (default 5). The compiled server's CPU per refresh kept
    // falling for ~10 s of load after a 1 s warm-up (2.4 -> 1.5 ms, JIT tiering of a large bundle) while the peer's had
    // settled; a server runs for days, so the rounds measure the settled state of both.
    for (const name of names) await sides[name](WARMUP_SECONDS);
    // BENCH_CPU_PROF=prefix: a V8 CPU profile of the Tessera server during one extra round, in prefix.<bench>.cpuprofile.
    if (process.env.BENCH_CPU_PROF && sides.tessera) {
      await ask(tessera, "profile-start");
      await sides.tessera(ROUND_SECONDS);
      const file = `${process.env.BENCH_CPU_PROF}.${title.replace(/[^a-z]+/gi, "-")}.cpuprofile`;
      await ask(tessera, `profile-stop ${file}`);
    }
    const runs = Object.fromEntries(names.map((n) => [n, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]);
      for (const name of order) runs[name].push(await sides[name](ROUND_SECONDS));
      console.log(
        `round ${round + 1}: ` +
          names
            .map(
              (n) =>
                `${n} ${runs[n].at(-1).rps.toFixed(0)}/s (${(runs[n].at(-1).cpuPerRequest / 1000).toFixed(2)} ms CPU` +
                (runs[n].at(-1).mainPerRequest === undefined
                  ? ")"
                  : `, ${(runs[n].at(-1).mainPerRequest / 1000).toFixed(2)} ms on the main thread)`) +
                (runs[n].at(-1).loadPerRequest === undefined
                  ? runs[n].at(-1).dbPerRequest === undefined
                    ? ""
                    : ` [PostgreSQL ${(runs[n].at(-1).dbPerRequest / 1000).toFixed(2)} ms]`
                  : ` [load ${(runs[n].at(-1).loadPerRequest / 1000).toFixed(2)} ms` +
                    (runs[n].at(-1).dbPerRequest === undefined
                      ? "]"
                      : `, PostgreSQL ${(runs[n].at(-1).dbPerRequest / 1000).toFixed(2)} ms]`)),
            )
            .join(", "),
      );
    }
    return runs;
  }

  function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  function summary(runs) {
    const total = runs.reduce((a, r) => a + r.rps, 0);
    const cpuMs = median(runs.map((r) => r.cpuPerRequest)) / 1000;
    const dbMs = runs.every((r) => r.dbPerRequest !== undefined)
      ? median(runs.map((r) => r.dbPerRequest)) / 1000
      : undefined;
    return { rps: total / runs.length, cpuMs, dbMs };
  }

  function ratioRow(runs, label, other, otherLabel) {
    const ratio = median(runs.tessera.map((r, i) => r.rps / runs[other][i].rps));
    const t = summary(runs.tessera);
    const o = summary(runs[other]);
    // PostgreSQL's CPU per request beside the server's, where it was read (the in-memory peer's is the idle rest).
    const db = (x) => (x.dbMs === undefined ? "" : ` + ${x.dbMs.toFixed(2)} ms PostgreSQL`);
    return (
      `| ${label} | ${t.rps.toFixed(0)}/s, ${t.cpuMs.toFixed(2)} ms CPU each${db(t)} | ${otherLabel} ` +
      `${o.rps.toFixed(0)}/s, ${o.cpuMs.toFixed(2)} ms CPU each${db(o)} | ${ratio.toFixed(2)} |`
    );
  }

  function figureRow(runs, label) {
    const t = summary(runs.tessera);
    return `| ${label} | ${t.rps.toFixed(0)}/s, ${t.cpuMs.toFixed(2)} ms CPU each | — | — |`;
  }
}
