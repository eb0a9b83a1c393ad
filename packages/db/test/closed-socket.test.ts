import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const url = process.env.TEST_DATABASE_URL;
const fixture = fileURLToPath(new URL("./fixtures/closed-socket.mjs", import.meta.url));

/**
 * The patched postgres.js (patches/postgres@3.4.9.patch, porsager/postgres#1154/#1208): a write on a connection whose
 * socket has closed settles with CONNECTION_CLOSED instead of throwing from a timer and ending the process, and the
 * pool keeps working. Without the patch the child exits 1 with the TypeError.
 */
describe.skipIf(!url)("postgres.js write after the backend died", () => {
  it("rejects the transaction with CONNECTION_CLOSED, keeps the process alive and the pool usable", async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [fixture, url as string], {
      timeout: 20_000,
    }).catch((error: { code?: number; stdout?: string; stderr?: string }) => {
      throw new Error(`child exited ${error.code}: ${error.stderr ?? ""}${error.stdout ?? ""}`);
    });
    expect(stderr).not.toContain("TypeError");
    expect(JSON.parse(stdout)).toEqual({ rejected: "CONNECTION_CLOSED", after: [1, 2, 3] });
  });
});
