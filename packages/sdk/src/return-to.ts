const BASE = "https://return-to.invalid";
const MAX_LENGTH = 2048;

/**
 * Accepts only a same-origin path (`/orders?id=3#top`) and returns it normalised; anything else (absolute URLs,
 * scheme-relative `//evil.example`, backslash tricks `/\evil.example`, control characters, `javascript:`) yields
 * `fallback`. Used for `returnTo` on login so the callback can never redirect to another site.
 *
 * @example
 * ```ts
 * safeReturnTo("/cart?step=2"); // "/cart?step=2"
 * safeReturnTo("//evil.example/phish"); // "/"
 * safeReturnTo("https://evil.example", "/home"); // "/home"
 * ```
 */
export function safeReturnTo(value: unknown, fallback = "/"): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_LENGTH) return fallback;
  if (!value.startsWith("/") || value.startsWith("//")) return fallback;
  // Browsers treat "\" like "/" and drop tabs/newlines inside URLs, so "/\evil" or "/\t/evil" would leave the site.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point here.
  if (/[\\\u0000-\u001f\u007f]/.test(value)) return fallback;
  let parsed: URL;
  try {
    parsed = new URL(value, BASE);
  } catch {
    return fallback;
  }
  if (parsed.origin !== BASE) return fallback;
  const path = parsed.pathname + parsed.search + parsed.hash;
  // The normalised path must still be a plain absolute path (e.g. "/..//evil" normalises to "//evil"), and still
  // short: percent-encoding can grow it ninefold, and it must fit the login cookie (browsers drop cookies over 4 KB).
  return path.startsWith("//") || path.length > MAX_LENGTH ? fallback : path;
}
