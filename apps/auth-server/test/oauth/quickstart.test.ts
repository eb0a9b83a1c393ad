import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The quick start examples, as a reader runs them (plain .mjs, no build).
// @ts-expect-error: a plain JavaScript example without type declarations
import { serviceToken } from "../../../../docs/quickstart/client-credentials.mjs";
// @ts-expect-error: a plain JavaScript example without type declarations
import { deviceSignIn } from "../../../../docs/quickstart/device-flow.mjs";
import { type Conformance, startConformance } from "../conformance/harness.ts";
import { signedInBrowser } from "../grants/helpers.ts";
import { createUser, registerClient } from "./helpers.ts";

/** docs/quickstart: the device-flow and client-credentials examples run against a live (listening) Tessera. */
let c: Conformance;
const run = promisify(execFile);
const example = (name: string) => fileURLToPath(new URL(`../../../../docs/quickstart/${name}`, import.meta.url));

/** Building the app and migrating its database can take minutes on a loaded CI machine. */
const BUILD_TIMEOUT_MS = 180_000;

beforeAll(async () => {
  c = await startConformance();
}, BUILD_TIMEOUT_MS);
afterAll(() => c.close());

describe("docs/quickstart examples", () => {
  it("client-credentials.mjs, run with node as the page says: a service token, then introspection", async () => {
    const server = await registerClient(c.t.app, {
      name: "Match server",
      redirectUris: [],
      grantTypes: ["client_credentials"],
      allowedScopes: ["openid", "matches:write"],
    });
    const { stdout } = await run(process.execPath, [example("client-credentials.mjs")], {
      env: { ...process.env, ISSUER: c.issuer, CLIENT_ID: server.clientId, CLIENT_SECRET: server.secret },
    });
    expect(stdout).toContain('Service token for "matches:write", valid');
    expect(stdout).toContain("active: true");
    await expect(
      serviceToken({ issuer: c.issuer, clientId: server.clientId, clientSecret: "wrong" }),
    ).rejects.toMatchObject({ error: "invalid_client" });
  });

  it("device-flow.mjs: the console polls while the player approves on a signed-in phone", async () => {
    const console_ = await registerClient(c.t.app, {
      name: "Arcade Console",
      redirectUris: [],
      grantTypes: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
    });
    const user = await createUser(c.t.app);
    const phone = await signedInBrowser(c.t.app, user);
    const player = approveOnSecondSleep(phone);
    const tokens = await deviceSignIn({
      issuer: c.issuer,
      clientId: console_.clientId,
      clientSecret: console_.secret,
      scope: "openid profile offline_access",
      onUserCode: player.onUserCode,
      sleep: player.sleep,
    });
    expect(tokens.token_type).toBe("Bearer");
    expect(tokens.refresh_token).toMatch(/^tsr_/);
    expect(player.sleeps()).toBe(2); // one authorization_pending poll, then the tokens
  });
});

/**
 * The example waits `interval` seconds between polls; here the app's clock moves instead. onUserCode remembers the
 * code; the second sleep (after one authorization_pending poll) approves it on the phone.
 */
function approveOnSecondSleep(phone: Awaited<ReturnType<typeof signedInBrowser>>) {
  let userCode = "";
  let sleeps = 0;
  return {
    onUserCode: async (device: { user_code: string }) => {
      userCode = device.user_code;
    },
    sleep: async (seconds: number) => {
      c.t.clock.advance(seconds);
      if (++sleeps !== 2) return;
      const confirm = await phone.submit("/device", { user_code: userCode });
      const decided = await phone.post("/device/decision", {
        ...Object.fromEntries(
          [...confirm.body.matchAll(/name="(_csrf|user_code)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]),
        ),
        decision: "approve",
      });
      expect(decided.statusCode).toBe(200);
    },
    sleeps: () => sleeps,
  };
}
