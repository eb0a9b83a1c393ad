/**
 * The README is part of the SDK: its Fastify example must stay short and must run as printed (only the issuer, the
 * secrets and the listen call are swapped for the test's), and every error code must be documented there.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCodes } from "../src/index.ts";
import { cookieHeader, type StubIssuer, startStubIssuer } from "./stub-issuer.ts";

const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8");
const example = /## A complete Fastify integration\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";

let stub: StubIssuer;
let app: FastifyInstance;
let dir: string;

beforeAll(async () => {
  stub = await startStubIssuer(Date.now);
  process.env.TESSERA_CLIENT_ID = stub.clientId;
  process.env.TESSERA_CLIENT_SECRET = stub.clientSecret;
  process.env.APP_SECRET = randomBytes(32).toString("base64");
  const source = example
    .replace(
      '"@tessera/sdk/fastify"',
      JSON.stringify(pathToFileURL(fileURLToPath(new URL("../src/fastify.ts", import.meta.url))).href),
    )
    .replace('"https://id.example.com"', JSON.stringify(stub.issuer))
    .replace("await app.listen({ port: Number(process.env.PORT ?? 3000) });", "export { app };");
  dir = mkdtempSync(join(tmpdir(), "sdk-readme-"));
  const file = join(dir, "example.ts");
  writeFileSync(file, source);
  app = ((await import(/* @vite-ignore */ pathToFileURL(file).href)) as { app: FastifyInstance }).app;
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
  for (const name of ["TESSERA_CLIENT_ID", "TESSERA_CLIENT_SECRET", "APP_SECRET"]) delete process.env[name];
});

describe("README", () => {
  it("has a complete Fastify example under 30 lines, run here with only the issuer, secrets and listen swapped", () => {
    expect(example).toContain("await app.register(tesseraPlugin");
    expect(example).toContain("await app.listen({ port: Number(process.env.PORT ?? 3000) });");
    expect(example.trimEnd().split("\n").length).toBeLessThan(30);
  });

  it("the example signs a user in, guards /api/me and /api/refunds, and greets on /", async () => {
    expect((await app.inject({ method: "GET", url: "/api/me" })).json()).toEqual({
      code: "UNAUTHENTICATED",
      message: "Sign-in required.",
    });
    const login = await app.inject({ method: "GET", url: "/auth/login?returnTo=/api/me" });
    expect(login.statusCode).toBe(302);
    const jar = new Map<string, string>();
    cookieHeader(([] as string[]).concat(login.headers["set-cookie"] ?? []), jar);
    const query = stub.authorize(String(login.headers.location));
    const callback = await app.inject({
      method: "GET",
      url: `/auth/callback?${query}`,
      headers: { cookie: cookieHeader([], jar) },
    });
    expect(callback.statusCode).toBe(303);
    expect(callback.headers.location).toBe("/api/me");
    const cookie = cookieHeader(([] as string[]).concat(callback.headers["set-cookie"] ?? []), jar);
    expect([...jar.keys()].sort()).toEqual(["__Host-shop-at", "__Host-shop-idt", "__Host-shop-rt"]);
    const me = await app.inject({ method: "GET", url: "/api/me", headers: { cookie } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ id: "user-1", email: "ada@example.com" });
    expect((await app.inject({ method: "GET", url: "/", headers: { cookie } })).body).toBe("Hello Ada");
    const refund = await app.inject({ method: "POST", url: "/api/refunds", headers: { cookie } });
    expect(refund.statusCode).toBe(403);
    expect(refund.json().code).toBe("FORBIDDEN");
  });

  it("documents every error code the SDK can answer", () => {
    const errors = readme.slice(readme.indexOf("## Errors"));
    for (const code of Object.keys(errorCodes)) expect(errors).toContain(`\`${code}\``);
  });
});
