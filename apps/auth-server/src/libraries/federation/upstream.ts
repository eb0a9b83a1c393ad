import * as oidc from "openid-client";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { consumeFlow, type IdentityProviderRow, insertFlow } from "../../queries/federation.ts";
import type { Continuation } from "../accounts/return-to.ts";
import { addSeconds } from "../clock.ts";
import { randomToken, safeEqual, sha256 } from "../crypto.ts";
import { githubPrimaryEmail, PRESETS, type PresetName, type UpstreamProfile } from "./presets.ts";
import { endpointOf, providerSecret, upstreamUrlAllowed } from "./providers.ts";
import { steamAuthorizationUrl, verifySteamAssertion } from "./steam.ts";

/**
 * The round trip to an upstream provider. `startUpstream` records a single-use flow (state, nonce, PKCE verifier,
 * where to continue) under the SHA-256 of a random value the browser keeps in a cookie, and answers the provider's
 * authorization URL. `finishUpstream` spends that flow (once: a replayed callback finds it used), checks the returned
 * state against it, and verifies the answer:
 *
 * - OpenID Connect (openid-client, from the issuer's discovery document): code exchange with the PKCE verifier, the ID
 *   token's signature (the issuer's JWKS), iss, aud, exp, and nonce, then the claims.
 * - OAuth 2.0 presets (openid-client on the preset's endpoints: one maintained, standards-checked client for both
 *   kinds — arctic's presets hard-code their URLs, so a test could not point them at a local stub without a module
 *   mock, and it does not fetch the user endpoint): code exchange with PKCE and state, then the user endpoint.
 * - Steam (OpenID 2.0, steam.ts): return_to and realm, then `check_authentication` at Steam.
 */

/** A flow lives this long: enough to sign in at the provider, short enough that a lost cookie is soon worthless. */
const FLOW_TTL_SECONDS = 600;

export interface FlowData {
  state: string;
  nonce?: string;
  verifier?: string;
  returnTo?: string;
  clientId?: string;
}

export function callbackUrl(ctx: CoreContext, provider: Pick<IdentityProviderRow, "slug">): string {
  return `${ctx.config.issuer.replace(/\/$/, "")}/federation/${provider.slug}/callback`;
}

/** openid-client configurations, kept per provider row version: discovery runs once per provider, not per sign-in. */
const configurations = new Map<string, { at: number; config: Promise<oidc.Configuration> }>();
const CONFIG_TTL_MS = 10 * 60_000;

function configurationFor(ctx: CoreContext, provider: IdentityProviderRow): Promise<oidc.Configuration> {
  const key = `${provider.id}:${provider.updatedAt.getTime()}`;
  const cached = configurations.get(key);
  if (cached && Date.now() - cached.at < CONFIG_TTL_MS) return cached.config;
  const secret = providerSecret(ctx, provider);
  const auth = oidc.ClientSecretPost(secret);
  const made = (async () => {
    if (provider.kind === "oidc") {
      const issuer = new URL(provider.issuer ?? "");
      const insecure = issuer.protocol === "http:" && upstreamUrlAllowed(issuer.href);
      return oidc.discovery(issuer, provider.clientId ?? "", secret, auth, {
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
        timeout: 10,
      });
    }
    const authorization = endpointOf(provider, "authorization") ?? "";
    const token = endpointOf(provider, "token") ?? "";
    const config = new oidc.Configuration(
      { issuer: new URL(authorization).origin, authorization_endpoint: authorization, token_endpoint: token },
      provider.clientId ?? "",
      secret,
      auth,
    );
    if ([authorization, token].some((u) => u.startsWith("http:"))) oidc.allowInsecureRequests(config);
    config.timeout = 10;
    return config;
  })();
  made.catch(() => configurations.delete(key));
  configurations.set(key, { at: Date.now(), config: made });
  return made;
}

/** Starts a round trip: the flow's cookie value (for the caller to set) and the URL to send the browser to. */
export async function startUpstream(
  ctx: CoreContext,
  provider: IdentityProviderRow,
  input: { continuation: Continuation; linkToUserId?: string | undefined },
): Promise<{ cookie: string; expiresAt: Date; location: string }> {
  const now = ctx.clock.now();
  const cookie = randomToken();
  const data: FlowData = { state: oidc.randomState() };
  if (input.continuation.returnTo) data.returnTo = input.continuation.returnTo;
  if (input.continuation.clientId) data.clientId = input.continuation.clientId;
  let location: string;
  if (provider.kind === "steam") {
    location = steamAuthorizationUrl(ctx, provider, data.state);
  } else {
    const config = await upstreamCall(() => configurationFor(ctx, provider));
    data.verifier = oidc.randomPKCECodeVerifier();
    const params: Record<string, string> = {
      redirect_uri: callbackUrl(ctx, provider),
      scope: provider.scopes.join(" "),
      state: data.state,
      code_challenge: await oidc.calculatePKCECodeChallenge(data.verifier),
      code_challenge_method: "S256",
    };
    if (provider.kind === "oidc") {
      data.nonce = oidc.randomNonce();
      params.nonce = data.nonce;
    }
    location = oidc.buildAuthorizationUrl(config, params).href;
  }
  const expiresAt = addSeconds(now, FLOW_TTL_SECONDS);
  await insertFlow(ctx.db, {
    tokenHash: sha256(cookie),
    purpose: "upstream",
    providerId: provider.id,
    userId: input.linkToUserId ?? null,
    data: { ...data },
    createdAt: now,
    expiresAt,
  });
  return { cookie, expiresAt, location };
}

export interface UpstreamResult {
  profile: UpstreamProfile;
  /** Where to continue, from the flow (never from the callback's query). */
  continuation: Continuation;
  /** Set when the flow was started from the account page to link this identity to that account. */
  linkToUserId: string | null;
}

/**
 * Finishes a round trip from the provider's callback. `query` is the callback's query string as received. Throws
 * FEDERATION_STATE_INVALID (no, unknown, spent or expired flow; a state that is not this flow's), FEDERATION_DENIED
 * (the user cancelled at the provider), FEDERATION_UPSTREAM_INVALID (an answer that fails verification) or
 * FEDERATION_UPSTREAM_UNAVAILABLE.
 */
export async function finishUpstream(
  ctx: CoreContext,
  provider: IdentityProviderRow,
  input: { cookie: string | undefined; query: URLSearchParams },
): Promise<UpstreamResult> {
  if (!input.cookie || input.cookie.length > 200) throw new AppError("FEDERATION_STATE_INVALID");
  const flow = await consumeFlow(ctx.db, sha256(input.cookie), "upstream", ctx.clock.now());
  if (!flow || flow.providerId !== provider.id) throw new AppError("FEDERATION_STATE_INVALID");
  const data = flow.data as unknown as FlowData;
  const state = input.query.get("state") ?? "";
  if (!safeEqual(state, data.state)) throw new AppError("FEDERATION_STATE_INVALID");
  const continuation: Continuation = { returnTo: data.returnTo, clientId: data.clientId };
  const done = (profile: UpstreamProfile) => ({ profile, continuation, linkToUserId: flow.userId });
  if (provider.kind === "steam") return done(await verifySteamAssertion(ctx, provider, input.query, data.state));
  if (input.query.has("error")) throw new AppError("FEDERATION_DENIED");

  const config = await upstreamCall(() => configurationFor(ctx, provider));
  const current = new URL(callbackUrl(ctx, provider));
  for (const [k, v] of input.query) current.searchParams.append(k, v);
  const tokens = await upstreamCall(() =>
    oidc.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: data.verifier ?? "",
      expectedState: data.state,
      ...(provider.kind === "oidc" ? { expectedNonce: data.nonce ?? "", idTokenExpected: true } : {}),
    }),
  );
  if (provider.kind === "oidc") {
    const claims = tokens.claims();
    if (!claims) throw new AppError("FEDERATION_UPSTREAM_INVALID");
    let info: Record<string, unknown> = claims;
    // Many providers put only `sub` in the ID token; the rest comes from userinfo (same subject, checked).
    if (!claims.email && config.serverMetadata().userinfo_endpoint) {
      info = { ...(await upstreamCall(() => oidc.fetchUserInfo(config, tokens.access_token, claims.sub))), ...claims };
    }
    return done({
      subject: claims.sub,
      email: typeof info.email === "string" ? info.email : null,
      emailVerified: info.email_verified === true,
      name: typeof info.name === "string" ? info.name : null,
    });
  }
  return done(await presetProfile(provider, tokens.access_token));
}

async function presetProfile(provider: IdentityProviderRow, accessToken: string): Promise<UpstreamProfile> {
  const preset = PRESETS[provider.preset as PresetName];
  const headers = {
    authorization: `Bearer ${accessToken}`,
    accept: "application/json",
    "user-agent": "Tessera",
    ...preset.userHeaders?.(provider.clientId ?? ""),
  };
  const get = async (url: string) => {
    const response = await upstreamCall(() => fetch(url, { headers, signal: AbortSignal.timeout(10_000) }));
    if (!response.ok) throw new AppError("FEDERATION_UPSTREAM_INVALID");
    return upstreamCall(() => response.json() as Promise<unknown>);
  };
  const profile = preset.profile(await get(endpointOf(provider, "user") ?? ""));
  if (!profile) throw new AppError("FEDERATION_UPSTREAM_INVALID");
  const emails = endpointOf(provider, "emails");
  if (provider.preset === "github" && emails) {
    const primary = githubPrimaryEmail(await get(emails));
    if (primary) return { ...profile, email: primary.email, emailVerified: primary.verified };
  }
  return profile;
}

/**
 * Runs a call to the provider, turning its failures into catalog errors: an answer that fails a check (openid-client's
 * ClientError and response errors: state, nonce, signature, iss, aud, exp, an error from the token endpoint) is
 * FEDERATION_UPSTREAM_INVALID; an unreachable provider is FEDERATION_UPSTREAM_UNAVAILABLE. Our own errors pass.
 */
export async function upstreamCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof AppError) throw error;
    if (error instanceof oidc.AuthorizationResponseError) throw new AppError("FEDERATION_DENIED");
    if (error instanceof oidc.ClientError || error instanceof oidc.ResponseBodyError || error instanceof SyntaxError) {
      throw new AppError("FEDERATION_UPSTREAM_INVALID");
    }
    if (error instanceof TypeError && (error as { code?: string }).code?.startsWith("ERR_JOSE")) {
      throw new AppError("FEDERATION_UPSTREAM_INVALID");
    }
    throw new AppError("FEDERATION_UPSTREAM_UNAVAILABLE");
  }
}
