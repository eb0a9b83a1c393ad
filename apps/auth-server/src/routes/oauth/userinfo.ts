import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { OAuthError } from "../../errors/index.ts";
import { noStore } from "../../http/errors.ts";
import { USERINFO_BODY_PARAMS } from "../../libraries/oauth/form-params.ts";
import { readParams } from "../../libraries/oauth/params.ts";
import { userinfo } from "../../libraries/oauth/resources.ts";
import { methodNotAllowed } from "./http.ts";

/**
 * The access token, from `Authorization: Bearer` or (POST only) the form body's access_token (RFC 6750 2.1, 2.2).
 * Sending it both ways is invalid_request (RFC 6750 2: exactly one method per request).
 */
function bearerToken(request: FastifyRequest): { token: string | undefined; scheme: "Bearer" | "DPoP" } {
  const header = request.headers.authorization;
  // RFC 9449 7.1: a DPoP-bound access token comes with the DPoP scheme (and a proof in the DPoP header).
  const scheme = typeof header === "string" && /^dpop /i.test(header) ? "DPoP" : "Bearer";
  const fromHeader =
    typeof header === "string" && /^(bearer|dpop) /i.test(header)
      ? header.slice(scheme === "DPoP" ? 5 : 7).trim()
      : undefined;
  let fromBody: string | undefined;
  if (
    request.method === "POST" &&
    /^application\/x-www-form-urlencoded\b/i.test(request.headers["content-type"] ?? "")
  ) {
    fromBody = readParams(request.body, USERINFO_BODY_PARAMS).access_token;
  }
  if (fromHeader && fromBody) {
    throw new OAuthError("invalid_request", "Send the access token in one place only.", 400, {
      "www-authenticate": 'Bearer realm="tessera", error="invalid_request"',
    });
  }
  return { token: fromHeader || fromBody, scheme };
}

/** OIDC Core 5.3: GET and POST /userinfo with a Tessera access token. */
export async function userinfoRoutes(app: FastifyInstance): Promise<void> {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const { token, scheme } = bearerToken(request);
    const proof = { scheme, header: request.headers.dpop, method: request.method };
    return noStore(reply).send(await userinfo(app.ctx, token, proof));
  };
  app.get("/userinfo", { config: { errorFormat: "oauth" } }, handler);
  app.post("/userinfo", { config: { errorFormat: "oauth" } }, handler);
  methodNotAllowed(app, "/userinfo", ["GET", "HEAD", "POST", "OPTIONS"]);
}
