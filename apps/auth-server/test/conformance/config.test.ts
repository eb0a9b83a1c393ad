import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openidConfiguration } from "../../src/routes/discovery.ts";
import { type Conformance, startConformance } from "./harness.ts";

/**
 * The OpenID Foundation's Config OP plan (oidcc-config-certification-test-plan): the discovery document and the JWKS
 * as a relying party reads them, over real HTTP (oauth4webapi already checked that `issuer` matches the URL).
 */
let c: Conformance;

/** Building the app and migrating its database can take minutes on a loaded CI machine. */
const BUILD_TIMEOUT_MS = 180_000;

beforeAll(async () => {
  c = await startConformance();
}, BUILD_TIMEOUT_MS);
afterAll(async () => {
  await c.close();
});

describe("oidcc-config-certification-test-plan", () => {
  it("oidcc-discovery-endpoint-verification", async () => {
    const response = await fetch(`${c.issuer}/.well-known/openid-configuration`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const metadata = (await response.json()) as Record<string, string & string[] & boolean>;
    // OpenID Connect Discovery 1.0 section 3: the REQUIRED members, then what the Basic and logout plans rely on.
    expect(metadata.issuer).toBe(c.issuer);
    for (const endpoint of ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"]) {
      expect(String(metadata[endpoint]).startsWith(`${c.issuer}/`), endpoint).toBe(true);
    }
    expect(metadata.response_types_supported).toContain("code");
    expect(metadata.subject_types_supported).toEqual(["public"]);
    expect(metadata.id_token_signing_alg_values_supported).toContain("RS256");
    expect(metadata.id_token_signing_alg_values_supported).not.toContain("none");
    expect(metadata.scopes_supported).toContain("openid");
    expect(metadata.grant_types_supported).toContain("authorization_code");
    expect(metadata.token_endpoint_auth_methods_supported).toContain("client_secret_basic");
    expect(metadata.claims_supported).toEqual(expect.arrayContaining(["sub", "iss", "aud", "exp", "iat"]));
    // Features the server does not offer must be declared off, so the suite skips (not fails) their modules.
    expect(metadata.request_parameter_supported).toBe(false);
    expect(metadata.request_uri_parameter_supported).toBe(false);
    expect(metadata.claims_parameter_supported).toBe(false);
    expect(typeof metadata.end_session_endpoint).toBe("string");
    // CheckDiscEndpointScopesSupportedSyntax (RFC 6749 3.3 scope-token) and
    // EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray (RFC 8414 2).
    for (const scope of (metadata.scopes_supported ?? []) as string[])
      expect(scope).toMatch(/^[\x21\x23-\x5B\x5D-\x7E]+$/);
    expect(Array.isArray(metadata.code_challenge_methods_supported)).toBe(true);
    // CheckDiscEndpointAllEndpointsAreHttps: every endpoint is on the issuer's origin; the harness's issuer is plain
    // http on loopback, so https is checked on the metadata for an https issuer (production refuses any other ISSUER).
    const endpoints = Object.entries(metadata).filter(([k]) => k.endsWith("_endpoint") || k === "jwks_uri");
    for (const [name, value] of endpoints) expect(new URL(value).origin, name).toBe(c.issuer);
    const https = openidConfiguration("https://id.conformance.example") as Record<string, unknown>;
    for (const [name, value] of Object.entries(https)) {
      if (name.endsWith("_endpoint") || name === "jwks_uri") expect(String(value), name).toMatch(/^https:\/\//);
    }
    // The module also fetches the JWKS (FetchServerKeys, ValidateServerJWKs,
    // EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys).
    await expectValidJwks();
  });
});

/** The JWKS as the discovery module fetches and checks it. */
async function expectValidJwks() {
  const response = await fetch(c.as.jwks_uri as string);
  expect(response.status).toBe(200);
  const { keys } = (await response.json()) as { keys: Record<string, unknown>[] };
  // Every advertised signing algorithm has its key from the first start, each with a unique kid and no private part.
  const algs = (c.as.id_token_signing_alg_values_supported ?? []) as string[];
  for (const alg of algs)
    expect(
      keys.some((k) => k.alg === alg),
      alg,
    ).toBe(true);
  expect(new Set(keys.map((k) => k.kid)).size).toBe(keys.length);
  for (const key of keys) {
    expect(key.use).toBe("sig");
    for (const secret of ["d", "p", "q", "dp", "dq", "qi", "k"]) expect(key[secret], secret).toBeUndefined();
  }
}
