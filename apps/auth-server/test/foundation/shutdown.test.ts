import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const dataDir = mkdtempSync(join(tmpdir(), "tessera-shutdown-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/**
 * Starts `pnpm start`'s entry point (the compiled bundle, which install builds) as a real process on a free port, on the
 * embedded database. The compiled server starts in about a second (a first start on PGlite in a few); on a loaded CI
 * machine running coverage beside it a first start took close to 30 s, so the wait is generous.
 */
function startServer(): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const child = spawn(process.execPath, ["apps/auth-server/dist/server.js"], {
    cwd: root,
    env: { PATH: process.env.PATH, PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 100_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = output.match(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/);
      if (match) {
        clearTimeout(timer);
        resolvePromise({ child, port: Number(match[1]), output: () => output });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", () => reject(new Error(`server exited early:\n${output}`)));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null }>((r) => child.on("exit", (code) => r({ code })));

describe("graceful shutdown", () => {
  it("finishes an in-flight request, closes the database and exits 0 on SIGTERM", async () => {
    const { child, port, output } = await startServer();
    const exit = exited(child);
    expect(existsSync(`${dataDir}.lock`)).toBe(true);

    // An in-flight request: headers sent, body only half sent when the signal arrives.
    const socket = connect(port, "127.0.0.1");
    await new Promise((r) => socket.on("connect", r));
    let response = "";
    socket.on("data", (d) => {
      response += d.toString();
    });
    const body = JSON.stringify({ hello: "world" });
    socket.write(
      `POST /readyz HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    socket.end(body.slice(5));
    await new Promise((r) => socket.on("close", r));

    // The request still got an answer (404: there is no POST /readyz), not a reset connection.
    expect(response).toMatch(/^HTTP\/1\.1 404/);
    const { code } = await exit;
    expect(code).toBe(0);
    expect(output()).toContain("shutdown complete");
    // The embedded database was closed: its lock is released.
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
  }, 150_000);

  it("restarts on the same data directory (data persists, lock was released)", async () => {
    const { child, port } = await startServer();
    const exit = exited(child);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(res.status).toBe(200);
    } finally {
      child.kill("SIGINT");
    }
    expect((await exit).code).toBe(0);
  }, 150_000);
});
