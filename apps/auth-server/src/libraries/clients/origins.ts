import type { CoreContext } from "../../context.ts";
import { activeClientHasWebOrigin } from "../../queries/clients.ts";
import type { ClientRow } from "./index.ts";

/**
 * Browser origins allowed to call Tessera's token, userinfo and revocation endpoints with CORS: exactly the web
 * origins registered on active clients (`webOrigins`, never derived from redirect URIs, so a native app's loopback or
 * a web back end's callback host gets no CORS by accident). Answers are kept per instance for ORIGIN_CACHE_TTL_MS,
 * so a preflight costs no query per request; a new or removed origin applies within that time.
 */
export const ORIGIN_CACHE_TTL_MS = 5_000;
const ORIGIN_CACHE_MAX = 10_000;
/** Longest Origin header considered; a real one is a scheme, a host and a port. */
const MAX_ORIGIN_LENGTH = 300;

const caches = new WeakMap<object, Map<string, { allowed: boolean; expiresAtMs: number }>>();

/** A syntactically sane Origin header value (scheme://host[:port]), or null (`null`, oversized, odd characters). */
export function originOf(header: unknown): string | null {
  if (typeof header !== "string" || header.length > MAX_ORIGIN_LENGTH) return null;
  return /^https?:\/\/[A-Za-z0-9.\-[\]:]+$/.test(header) ? header : null;
}

/** True when some active client registered this exact origin. */
export async function isRegisteredWebOrigin(deps: Pick<CoreContext, "db" | "clock">, origin: string): Promise<boolean> {
  let cache = caches.get(deps.db);
  if (!cache) {
    cache = new Map();
    caches.set(deps.db, cache);
  }
  const nowMs = deps.clock.now().getTime();
  const hit = cache.get(origin);
  if (hit && hit.expiresAtMs > nowMs) return hit.allowed;
  const allowed = await activeClientHasWebOrigin(deps.db, origin);
  if (cache.size >= ORIGIN_CACHE_MAX) cache.clear();
  cache.set(origin, { allowed, expiresAtMs: nowMs + ORIGIN_CACHE_TTL_MS });
  return allowed;
}

/** A browser request (it sent Origin) for a client that did not register that origin. */
export function originRefused(client: ClientRow, origin: string | null): boolean {
  return origin !== null && !client.webOrigins.includes(origin);
}
