import type { FastifyInstance } from "fastify";
import { OAuthError } from "../../errors/index.ts";
import { noStore } from "../../http/errors.ts";
import { routeRateLimit } from "../../http/rate-limit.ts";
import { originOf, originRefused } from "../../libraries/clients/index.ts";
import { authenticateOAuthClient, checkGrantAllowed } from "../../libraries/oauth/client-auth.ts";
import { CLIENT_CREDENTIALS_GRANT, clientCredentialsGrant } from "../../libraries/oauth/client-credentials.ts";
import { DEVICE_CODE_GRANT, deviceCodeGrant } from "../../libraries/oauth/device.ts";
import { dpopNonce, tokenRequestKey } from "../../libraries/oauth/dpop.ts";
import { TOKEN_HINT_PARAMS, TOKEN_PARAMS } from "../../libraries/oauth/form-params.ts";
import { authorizationCodeGrant, refreshTokenGrant } from "../../libraries/oauth/grants.ts";
import { readParams } from "../../libraries/oauth/params.ts";
import { introspect, revoke } from "../../libraries/oauth/resources.ts";
import { clientCredentials, failureLog, methodNotAllowed, requireForm } from "./http.ts";

/** The grant types /token answers (each still enabled per client through its `grant_types`). */
const GRANT_TYPES = ["authorization_code", "refresh_token", CLIENT_CREDENTIALS_GRANT, DEVICE_CODE_GRANT];

/** /token (RFC 6749 3.2), /revoke (RFC 7009) and /introspect (RFC 7662): form bodies, client-authenticated. */
export async function tokenRoutes(app: FastifyInstance): Promise<void> {
  const { ctx } = app;

  // checkForm → checkParams → checkGrantType → authenticateClient → checkGrantAllowed → grant
  app.post(
    "/token",
    { config: { errorFormat: "oauth", rateLimit: routeRateLimit(ctx.config, "token") } },
    async (request, reply) => {
      requireForm(request);
      const p = readParams(request.body, TOKEN_PARAMS);
      if (!p.grant_type) throw new OAuthError("invalid_request", "The grant_type parameter is required.");
      if (!GRANT_TYPES.includes(p.grant_type)) {
        throw new OAuthError("unsupported_grant_type", `Supported grant types: ${GRANT_TYPES.join(", ")}.`);
      }
      const credentials = clientCredentials(request, request.body);
      const client = await authenticateOAuthClient(ctx, credentials, request.meta, {
        allowPublic: true,
        ...failureLog(request),
      });
      checkGrantAllowed(client, p.grant_type);
      if (originRefused(client, originOf(request.headers.origin))) {
        throw new OAuthError("invalid_client", "This browser origin is not registered for this client.");
      }
      // DPoP (RFC 9449) for every grant: the tokens issued are bound to the proof's key. A request with a proof is
      // answered with the current server nonce, for the client's next proof (RFC 9449 8).
      const dpopJkt = await tokenRequestKey(ctx, client, request.headers.dpop);
      if (dpopJkt) reply.header("dpop-nonce", dpopNonce(ctx));
      if (p.grant_type === CLIENT_CREDENTIALS_GRANT && credentials) {
        return noStore(reply).send(await clientCredentialsGrant(ctx, client, credentials.method, p.scope, dpopJkt));
      }
      if (p.grant_type === DEVICE_CODE_GRANT) {
        return noStore(reply).send(await deviceCodeGrant(ctx, client, p.device_code, request.meta, dpopJkt));
      }
      const response =
        p.grant_type === "authorization_code"
          ? await authorizationCodeGrant(
              ctx,
              client,
              { code: p.code, redirectUri: p.redirect_uri, codeVerifier: p.code_verifier, dpopJkt },
              request.meta,
            )
          : await refreshTokenGrant(
              ctx,
              client,
              { refreshToken: p.refresh_token, scope: p.scope, receivedAt: request.receivedAt, dpopJkt },
              request.meta,
            );
      return noStore(reply).send(response);
    },
  );
  methodNotAllowed(app, "/token", ["POST", "OPTIONS"]);

  app.post(
    "/revoke",
    { config: { errorFormat: "oauth", rateLimit: routeRateLimit(ctx.config, "revoke") } },
    async (request, reply) => {
      requireForm(request);
      const p = readParams(request.body, TOKEN_HINT_PARAMS);
      const client = await authenticateOAuthClient(ctx, clientCredentials(request, request.body), request.meta, {
        allowPublic: true,
        ...failureLog(request),
      });
      if (!p.token) throw new OAuthError("invalid_request", "The token parameter is required.");
      await revoke(ctx, client, p.token, request.meta);
      // RFC 7009 2.2: 200 whether or not there was anything to revoke.
      return noStore(reply).code(200).send();
    },
  );
  methodNotAllowed(app, "/revoke", ["POST", "OPTIONS"]);

  app.post(
    "/introspect",
    { config: { errorFormat: "oauth", rateLimit: routeRateLimit(ctx.config, "introspect") } },
    async (request, reply) => {
      requireForm(request);
      const p = readParams(request.body, TOKEN_HINT_PARAMS);
      const client = await authenticateOAuthClient(
        ctx,
        clientCredentials(request, request.body),
        request.meta,
        failureLog(request),
      );
      if (!p.token) throw new OAuthError("invalid_request", "The token parameter is required.");
      return noStore(reply).send(await introspect(ctx, client, p.token));
    },
  );
  methodNotAllowed(app, "/introspect", ["POST"]);
}
