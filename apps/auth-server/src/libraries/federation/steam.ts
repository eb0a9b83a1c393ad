import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import type { IdentityProviderRow } from "../../queries/federation.ts";
import { STEAM_CLAIMED_ID, type UpstreamProfile } from "./presets.ts";
import { steamEndpoint } from "./providers.ts";
import { callbackUrl, upstreamCall } from "./upstream.ts";

/**
 * Steam through OpenID 2.0, its only protocol. The assertion the browser brings back is only a claim: it is believed
 * after (1) its `return_to` is exactly the URL this flow sent (our callback with this flow's state), (2) it names
 * Steam's endpoint and our realm's callback, (3) every field that matters is in `openid.signed`, and (4) Steam itself
 * answers `is_valid:true` to `check_authentication` for the same fields (stateless mode: Steam checks its own
 * signature and spends the response nonce). The SteamID64 is taken from `claimed_id`. Steam gives no email.
 */

const NS = "http://specs.openid.net/auth/2.0";
const SELECT = "http://specs.openid.net/auth/2.0/identifier_select";
const MUST_BE_SIGNED = ["op_endpoint", "claimed_id", "identity", "return_to", "response_nonce", "assoc_handle"];

function returnTo(ctx: CoreContext, provider: IdentityProviderRow, state: string): string {
  return `${callbackUrl(ctx, provider)}?state=${encodeURIComponent(state)}`;
}

function realm(ctx: CoreContext): string {
  return `${new URL(ctx.config.issuer).origin}/`;
}

export function steamAuthorizationUrl(ctx: CoreContext, provider: IdentityProviderRow, state: string): string {
  const url = new URL(steamEndpoint(provider));
  url.search = new URLSearchParams({
    "openid.ns": NS,
    "openid.mode": "checkid_setup",
    "openid.return_to": returnTo(ctx, provider, state),
    "openid.realm": realm(ctx),
    "openid.identity": SELECT,
    "openid.claimed_id": SELECT,
  }).toString();
  return url.href;
}

export async function verifySteamAssertion(
  ctx: CoreContext,
  provider: IdentityProviderRow,
  query: URLSearchParams,
  state: string,
): Promise<UpstreamProfile> {
  const invalid = () => new AppError("FEDERATION_UPSTREAM_INVALID");
  const one = (name: string) => {
    const values = query.getAll(`openid.${name}`);
    return values.length === 1 ? values[0] : undefined;
  };
  if (one("mode") === "cancel") throw new AppError("FEDERATION_DENIED");
  if (one("mode") !== "id_res" || one("ns") !== NS) throw invalid();
  if (one("op_endpoint") !== steamEndpoint(provider)) throw invalid();
  // An assertion made for another site's (or another flow's) return URL is refused before Steam is even asked.
  if (one("return_to") !== returnTo(ctx, provider, state)) throw invalid();
  const claimed = one("claimed_id");
  const match = claimed ? STEAM_CLAIMED_ID.exec(claimed) : null;
  if (!match?.[1] || one("identity") !== claimed) throw invalid();
  const signed = new Set((one("signed") ?? "").split(","));
  if (!MUST_BE_SIGNED.every((f) => signed.has(f))) throw invalid();

  const body = new URLSearchParams();
  for (const [k, v] of query) if (k.startsWith("openid.")) body.append(k, v);
  body.set("openid.mode", "check_authentication");
  const answer = await upstreamCall(async () => {
    const response = await fetch(steamEndpoint(provider), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "text/plain" },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) throw invalid();
    return response.text();
  });
  // Key-value form (OpenID 2.0 §4.1.1): one "key:value" per line.
  const valid = answer.split("\n").some((line) => line.trim() === "is_valid:true");
  if (!valid) throw invalid();
  return { subject: match[1], email: null, emailVerified: false, name: null };
}
