import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A throwaway PostgreSQL cluster of our own (initdb + pg_ctl as the postgres user, on a free port, in a temp dir), so
 * a fault test can stop and restart "the database" without touching the machine's server.
 */
export class Cluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private bin: string,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async create(): Promise<Cluster> {
    const versions = readdirSync("/usr/lib/postgresql")
      .filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
      .sort((a, b) => Number(a) - Number(b));
    const version = versions.at(-1);
    if (!version) throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin");
    const dir = mkdtempSync(join(tmpdir(), "tessera-fault-pg-"));
    chmodSync(dir, 0o777);
    const cluster = new Cluster(dir, await freePort(), `/usr/lib/postgresql/${version}/bin`);
    cluster.asPostgres("initdb", ["-D", join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync"]);
    cluster.start();
    return cluster;
  }

  private asPostgres(tool: string, args: string[]): string {
    const asRoot = process.getuid?.() === 0;
    const [cmd, argv] = asRoot
      ? ["runuser", ["-u", "postgres", "--", join(this.bin, tool), ...args]]
      : [join(this.bin, tool), args];
    return execFileSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  }

  /** Starts the server and waits until it accepts connections. */
  start(): void {
    const options = [
      `-p ${this.port}`,
      `-k ${this.dir}`,
      "-c listen_addresses=127.0.0.1",
      "-c fsync=off",
      "-c full_page_writes=off",
      "-c shared_buffers=16MB",
      "-c max_connections=50",
    ].join(" ");
    this.asPostgres("pg_ctl", [
      "-D",
      join(this.dir, "data"),
      "-l",
      join(this.dir, "log"),
      "-w",
      "-t",
      "60",
      "-o",
      options,
      "start",
    ]);
  }

  /**
   * Stops the server with every backend gone at once. "fast" (the default, as `pg_ctl stop` and a failover's
   * shutdown do it) sends each session 57P01 and closes it, which is the close that hit postgres.js's null-socket
   * write (issue #10); "immediate" is a crash.
   */
  stop(mode: "fast" | "immediate" = "fast"): void {
    this.asPostgres("pg_ctl", ["-D", join(this.dir, "data"), "-m", mode, "-w", "stop"]);
  }

  destroy(): void {
    try {
      this.asPostgres("pg_ctl", ["-D", join(this.dir, "data"), "-m", "immediate", "-w", "stop"]);
    } catch {
      // not running
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
