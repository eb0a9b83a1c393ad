/**
 * Benchmark target, started by bench/run.mjs in a child process (so autocannon does not share its event loop):
 * the same route twice, on two ports: bare Fastify, and Fastify with the SDK plugin and `requireUser`. Prints one
 * JSON line with both ports and a valid access cookie, then serves until killed.
 */
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { AccessTokenCodec } from "../packages/sdk/src/access-token.ts";
import { requireUser, tesseraPlugin } from "../packages/sdk/src/fastify.ts";
// Internal: the bench mints a cookie the way a completed sign-in would, without running an identity provider.
import { deriveKey } from "../packages/sdk/src/seal.ts";

const appSecret = randomBytes(32);
const clientId = "bench-client";
const payload = { hello: "world" };

const bare = Fastify({ logger: false });
bare.get("/hello", async () => payload);

const protectedApp = Fastify({ logger: false });
await protectedApp.register(tesseraPlugin, {
  // Never contacted: a valid access cookie needs no call to the identity provider.
  issuer: "http://127.0.0.1:9",
  clientId,
  clientSecret: "unused",
  appSecret,
  redirectUri: "http://127.0.0.1/auth/callback",
  cookies: { secure: false, prefix: "bench" },
  routes: false,
});
protectedApp.get("/hello", { onRequest: requireUser }, async () => payload);

const codec = new AccessTokenCodec({ secret: deriveKey(appSecret, "access-jwt"), audience: clientId });
const now = Math.floor(Date.now() / 1000);
const jwt = codec.sign(
  {
    sub: "0b7a7c38-5f0e-4a55-9c55-6f5f3c1f0d11",
    sid: "5b0c1a6e-3f7d-4a8e-8e0c-2f1b9d7c4e21",
    sxp: now + 86400,
    email: "bench@example.com",
    email_verified: true,
    name: "Bench User",
  },
  now,
  3600,
);

await bare.listen({ port: 0, host: "127.0.0.1" });
await protectedApp.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(
  `${JSON.stringify({
    bare: (bare.server.address() as AddressInfo).port,
    protected: (protectedApp.server.address() as AddressInfo).port,
    // A realistic Cookie header: the access JWT among a few other cookies.
    cookie: `theme=dark; bench-at=${jwt}; bench-rt=tsr_${randomBytes(32).toString("base64url")}; _ga=GA1.1.123.456`,
  })}\n`,
);
// bench/run.mjs asks for this process's CPU time around each measurement.
process.on("message", () => process.send?.(process.cpuUsage()));
process.on("SIGTERM", () => {
  Promise.all([bare.close(), protectedApp.close()]).then(() => process.exit(0));
});
