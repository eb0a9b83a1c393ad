import { describe, expect, it } from "vitest";
import { isDriverConnectionError } from "../../src/http/last-resort.ts";

function withStack(error: Error, frames: string[]): Error {
  error.stack = [`${error.name}: ${error.message}`, ...frames.map((f) => `    at ${f}`)].join("\n");
  return error;
}

describe("what the last-resort handler lets the process survive", () => {
  it("the driver's null-socket TypeError (porsager/postgres#1154), ESM or CJS, pnpm or npm layout", () => {
    const frames = [
      "Immediate.nextWrite (file:///app/node_modules/.pnpm/postgres@3.4.9/node_modules/postgres/src/connection.js:255:22)",
      "Immediate.nextWrite (/app/node_modules/postgres/cjs/src/connection.js:255:22)",
    ];
    for (const frame of frames) {
      const error = withStack(new TypeError("Cannot read properties of null (reading 'write')"), [
        frame,
        "process.processImmediate (node:internal/timers:483:21)",
      ]);
      expect(isDriverConnectionError(error)).toBe(true);
    }
  });

  it("connection errors by code", () => {
    for (const code of ["CONNECTION_CLOSED", "CONNECT_TIMEOUT", "ECONNREFUSED", "57P01", "08006"]) {
      expect(isDriverConnectionError(Object.assign(new Error("x"), { code }))).toBe(true);
    }
  });

  it("not our own bugs, even one that mentions postgres or passes through the driver lower in the stack", () => {
    const ours = withStack(new TypeError("Cannot read properties of undefined (reading 'id')"), [
      "refreshGrant (file:///app/apps/auth-server/src/libraries/oauth/grants.ts:150:20)",
      "Query.resolve (file:///app/node_modules/postgres/src/query.js:26:5)",
    ]);
    expect(isDriverConnectionError(ours)).toBe(false);
    expect(isDriverConnectionError(new Error("postgres is sad"))).toBe(false);
    expect(isDriverConnectionError(Object.assign(new Error("dup"), { code: "23505" }))).toBe(false);
    expect(isDriverConnectionError("CONNECTION_CLOSED")).toBe(false);
    expect(isDriverConnectionError(undefined)).toBe(false);
  });
});
