import type { FastifyInstance } from "fastify";
import { publicCors } from "../http/cors.ts";
import { ensureSigningKey, publicJwks, SIGNING_ALGS } from "../libraries/keys/index.ts";
import { ACR_VALUES_SUPPORTED } from "../libraries/oauth/acr.ts";
import { CLIENT_CREDENTIALS_GRANT } from "../libraries/oauth/client-credentials.ts";
import { DEVICE_CODE_GRANT } from "../libraries/oauth/device.ts";
import { DPOP_ALGS } from "../libraries/oauth/dpop.ts";

/** Discovery changes only with a deploy; an hour of caching spares every client a request per sign-in. */
const DISCOVERY_MAX_AGE_SECONDS = 3600;
/**
 * Short, because a rotated key signs at once: verifiers that see an unknown `kid` refetch anyway, and others pick
 * up the new key within a minute.
 */
const JWKS_MAX_AGE_SECONDS = 60;

export const SUPPORTED_SCOPES = ["openid", "profile", "email", "offline_access", "roles"];
export const SUPPORTED_CLAIMS = [
  "sub",
  "iss",
  "aud",
  "exp",
  "iat",
  "auth_time",
  "nonce",
  "amr",
  "acr",
  "sid",
  "name",
  "email",
  "email_verified",
  "roles",
  "permissions",
  "entitlements",
];

/** The OpenID Provider metadata (OpenID Connect Discovery 1.0, RFC 8414), built from the configured issuer only. */
export function openidConfiguration(issuer: string) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/userinfo`,
    jwks_uri: `${issuer}/jwks`,
    revocation_endpoint: `${issuer}/revoke`,
    introspection_endpoint: `${issuer}/introspect`,
    end_session_endpoint: `${issuer}/logout`,
    scopes_supported: SUPPORTED_SCOPES,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token", CLIENT_CREDENTIALS_GRANT, DEVICE_CODE_GRANT],
    device_authorization_endpoint: `${issuer}/device_authorization`,
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: [...SIGNING_ALGS],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    code_challenge_methods_supported: ["S256"],
    prompt_values_supported: ["none", "login", "consent"],
    claims_supported: SUPPORTED_CLAIMS,
    acr_values_supported: ACR_VALUES_SUPPORTED,
    claim_types_supported: ["normal"],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    require_request_uri_registration: false,
    frontchannel_logout_supported: false,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    authorization_response_iss_parameter_supported: true,
  };
}

/** `/.well-known/openid-configuration` and `/jwks`; also makes sure a signing key exists when the server starts. */
export async function discoveryRoutes(app: FastifyInstance): Promise<void> {
  const metadata = openidConfiguration(app.ctx.config.issuer);

  app.addHook("onReady", async () => {
    // Best effort: if the database is not reachable yet, the key is created on first use instead. Every supported
    // algorithm gets its key now, so a client verifying ES256 or EdDSA ID tokens finds its key in the first JWKS.
    try {
      await ensureSigningKey(app.ctx);
      for (const alg of SIGNING_ALGS) await ensureSigningKey(app.ctx, alg);
    } catch (error) {
      app.log.warn(
        { err: { message: (error as Error).message } },
        "signing key not ensured at start; will retry on use",
      );
    }
  });

  publicCors(app, ["/.well-known/openid-configuration", "/jwks"]);

  app.get("/.well-known/openid-configuration", async (_request, reply) => {
    reply.header("cache-control", `public, max-age=${DISCOVERY_MAX_AGE_SECONDS}`);
    reply.header("access-control-allow-origin", "*");
    return metadata;
  });

  app.get("/jwks", async (_request, reply) => {
    const jwks = await publicJwks(app.ctx);
    reply.header("cache-control", `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    reply.header("access-control-allow-origin", "*");
    reply.type("application/jwk-set+json; charset=utf-8");
    return jwks;
  });
}
