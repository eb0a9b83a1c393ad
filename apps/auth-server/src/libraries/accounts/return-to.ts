/** Where a continuation after sign-in should go (validated by `safeReturnTo`). */
export interface Continuation {
  returnTo?: string | undefined;
  clientId?: string | undefined;
}

/**
 * The contract with the OpenID endpoints: after sign-in, continue to `return_to` only when it is a same-origin
 * relative path (one leading `/`, no `//`, no `\`, no scheme, no control characters); anything else lands on
 * /account. Returns the path to redirect to.
 */
export function safeReturnTo(raw: unknown, fallback = "/account"): string {
  if (typeof raw !== "string" || raw.length === 0 || raw.length > 4096) return fallback;
  if (!raw.startsWith("/") || raw.startsWith("//")) return fallback;
  if (raw.includes("\\") || /\p{Cc}/u.test(raw)) return fallback;
  // A scheme can only appear before the first "/", "?" or "#"; the path starts with "/", so check decoded forms too.
  try {
    const decoded = decodeURIComponent(raw);
    if (decoded.startsWith("//") || decoded.includes("\\")) return fallback;
  } catch {
    return fallback;
  }
  try {
    const base = "http://tessera.invalid";
    const resolved = new URL(raw, base);
    if (resolved.origin !== base) return fallback;
  } catch {
    return fallback;
  }
  return raw;
}
