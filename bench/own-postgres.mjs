// A PostgreSQL cluster of the bench's own (BENCH_POSTGRES=own-core in bench/oauth.mjs), pinned with `taskset` to the
// given cores, so that the database does not run on the server's core. The machine's shared PostgreSQL is not pinned
// and cannot be (it is shared): the kernel puts its backends where the server's writes wake them, much of the time
// on the server's own core. This cluster stands in for a database on a host of its own, as in production.
//
// It is initialised (initdb, as the postgres user) in a temp directory and keeps PostgreSQL's defaults (fsync,
// synchronous_commit, full_page_writes, shared_buffers 128MB, autovacuum), so commits are as durable as on the
// machine's server; only where it listens and which cores it may run on differ.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Starts the cluster; returns its admin URL and `stop()`. Throws when the server binaries or taskset are missing. */
export async function startOwnPostgres({ cores }) {
  const versions = existsSync("/usr/lib/postgresql")
    ? readdirSync("/usr/lib/postgresql").filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
    : [];
  const version = versions.sort((a, b) => Number(a) - Number(b)).at(-1);
  if (!version)
    throw new Error("BENCH_POSTGRES=own-core needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)");
  const bin = `/usr/lib/postgresql/${version}/bin`;
  const dir = mkdtempSync(join(tmpdir(), "tessera-bench-pg-"));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const run = (argv) => {
    const [cmd, args] = asRoot ? ["runuser", ["-u", "postgres", "--", ...argv]] : [argv[0], argv.slice(1)];
    execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  };
  const data = join(dir, "data");
  run([join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  // pg_ctl under taskset: the postmaster inherits the affinity, and every backend it forks inherits it from there.
  run([
    "taskset",
    "-c",
    cores,
    join(bin, "pg_ctl"),
    "-D",
    data,
    "-l",
    join(dir, "log"),
    "-w",
    "-t",
    "60",
    "-o",
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`,
    "start",
  ]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    version,
    stop() {
      try {
        run([join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
