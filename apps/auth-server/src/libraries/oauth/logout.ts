import type { AppContext } from "../../context.ts";
import { OAuthPageError } from "../../errors/index.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { type ClientRow, findActiveClient } from "../clients/index.ts";
import { verifyJwt } from "../keys/index.ts";
import { endSessions, type SessionRow } from "../sessions.ts";
import { withParams } from "./authorize-request.ts";
import { readParams } from "./params.ts";

/** Parameters of RP-Initiated Logout 1.0 section 2 that Tessera reads; others are ignored. */
export const LOGOUT_PARAMS = {
  id_token_hint: 8192,
  post_logout_redirect_uri: 2000,
  state: 1024,
  client_id: 128,
  logout_hint: 320,
  ui_locales: 128,
} as const;

export interface LogoutRequest {
  /** From a valid id_token_hint: proof the request comes from an app the user signed in to. */
  hint: { sub: string; sid: string | undefined } | undefined;
  client: ClientRow | undefined;
  /** Registered for the client (exact match), or undefined: then a signed-out page is shown instead. */
  postLogoutRedirectUri: string | undefined;
  state: string | undefined;
}

/**
 * checkParams → checkIdTokenHint (signature verified; expired is fine) → checkClient (client_id must agree with the
 * hint's audience) → checkPostLogoutRedirectUri (registered for that client, exact string). Any failure is an error
 * page with no redirect (RP-Initiated Logout 1.0 section 3).
 */
export async function validateLogoutRequest(ctx: AppContext, input: unknown): Promise<LogoutRequest> {
  const p = readParams(input, LOGOUT_PARAMS, (d) => new OAuthPageError("invalid_request", d));
  let hint: LogoutRequest["hint"];
  let hintClientId: string | undefined;
  if (p.id_token_hint) {
    try {
      const payload = await verifyJwt(ctx, p.id_token_hint, { allowExpired: true });
      const aud = Array.isArray(payload.aud) ? payload.aud[0] : payload.aud;
      if (typeof payload.sub !== "string" || typeof aud !== "string") throw new Error("incomplete");
      hint = { sub: payload.sub, sid: typeof payload.sid === "string" ? payload.sid : undefined };
      hintClientId = aud;
    } catch {
      throw new OAuthPageError("invalid_request", "The id_token_hint is not a valid ID token issued by Tessera.");
    }
  }
  if (p.client_id && hintClientId && p.client_id !== hintClientId) {
    throw new OAuthPageError("invalid_request", "The client_id does not match the id_token_hint.");
  }
  const clientId = hintClientId ?? p.client_id;
  const client = clientId ? ((await findActiveClient(ctx.db, clientId)) ?? undefined) : undefined;
  if (clientId && !client) {
    // A valid hint proves the user signed in through that app: a disabled app must not keep them signed in to every
    // other one. The session ends; only the redirect back to the app is dropped (the signed-out page instead).
    if (hint) return { hint, client: undefined, postLogoutRedirectUri: undefined, state: undefined };
    throw new OAuthPageError("invalid_client", "The application is unknown or disabled.");
  }
  if (p.post_logout_redirect_uri) {
    if (!client) {
      throw new OAuthPageError(
        "invalid_request",
        "A post_logout_redirect_uri needs an id_token_hint or client_id naming the application.",
      );
    }
    if (!client.postLogoutRedirectUris.includes(p.post_logout_redirect_uri)) {
      throw new OAuthPageError(
        "invalid_request",
        "The post_logout_redirect_uri is not registered for this application.",
      );
    }
  }
  return { hint, client, postLogoutRedirectUri: p.post_logout_redirect_uri, state: p.state };
}

/**
 * Ends the sign-in session for every app: the browser's current session (unless it belongs to another user than the
 * hint names) and the session the hint was issued in. Ending revokes every refresh token of the session and queues a
 * back-channel logout for every client that took part. Returns where to send the browser (null: the signed-out page)
 * and whether the browser's own session ended (only then is its cookie cleared).
 */
export async function logout(
  ctx: AppContext,
  request: LogoutRequest,
  current: SessionRow | null,
  meta: RequestMeta,
): Promise<{ location: string | null; browserSignedOut: boolean }> {
  // The browser's session is ended unless it belongs to another user than the hint names: that user did not ask.
  const browserSignedOut = !current || !request.hint || request.hint.sub === current.userId;
  await ctx.db.transaction(async (tx) => {
    const targets: Array<{ ids: string[]; userId: string }> = [];
    if (current && browserSignedOut) {
      targets.push({ ids: [current.id], userId: current.userId });
    }
    if (request.hint?.sid && /^[0-9a-f-]{36}$/i.test(request.hint.sid) && request.hint.sid !== current?.id) {
      // Only if that session really is the hinted user's: the hint is a signed statement about both.
      targets.push({ ids: [request.hint.sid], userId: request.hint.sub });
    }
    for (const target of targets) {
      const ended = await endSessions(ctx, tx, target, "signed_out");
      for (const sessionId of ended) {
        await audit(tx, meta, {
          event: "user.signed_out",
          outcome: "success",
          userId: target.userId,
          sessionId,
          clientId: request.client?.clientId ?? null,
          details: { via: "rp_initiated_logout" },
        });
      }
    }
  });
  const location = request.postLogoutRedirectUri
    ? withParams(request.postLogoutRedirectUri, { state: request.state })
    : null;
  return { location, browserSignedOut };
}
