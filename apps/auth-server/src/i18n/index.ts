import type { ErrorCode } from "../errors/index.ts";
import { de } from "./de.ts";
import { en } from "./en.ts";
import { es } from "./es.ts";

/**
 * Message catalogs of the hosted pages and emails. A message's key is its English text (as in gettext), so a template
 * reads as the page it renders and English output is the key itself; `{name}` marks a parameter. Every catalog has
 * exactly the keys of English (test/i18n/catalogs.test.ts). Errors are translated by their catalog CODE (the machine
 * contract); English keeps the error's own message.
 */
export interface Catalog {
  messages: Readonly<Record<string, string>>;
  errors: Readonly<Partial<Record<ErrorCode, string>>>;
}

export const LOCALES = ["en", "de", "es"] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = "en";

export const catalogs: Readonly<Record<Locale, Catalog>> = { en, de, es };

export function isLocale(value: unknown): value is Locale {
  return typeof value === "string" && (LOCALES as readonly string[]).includes(value);
}

/** The first supported language of a list of tags (`de-CH` counts as `de`), or undefined. */
function firstSupported(tags: readonly string[]): Locale | undefined {
  for (const tag of tags) {
    const base = tag.trim().toLowerCase().split(/[-_]/)[0];
    if (isLocale(base)) return base;
  }
  return undefined;
}

/** OIDC `ui_locales`: space-separated BCP 47 tags in order of preference. */
export function fromUiLocales(value: string | undefined): Locale | undefined {
  if (!value || value.length > 128) return undefined;
  return firstSupported(value.split(" ").filter(Boolean));
}

/** `Accept-Language`, honouring q-values (q=0 means "not this one"). */
export function fromAcceptLanguage(header: string | undefined): Locale | undefined {
  if (!header || header.length > 512) return undefined;
  const ranked = header
    .split(",")
    .map((part, index) => {
      const [tag = "", ...params] = part.trim().split(";");
      const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
      const weight = q ? Number(q.slice(2)) : 1;
      return { tag: tag.trim(), weight: Number.isFinite(weight) ? weight : 0, index };
    })
    .filter((r) => r.tag && r.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.index - b.index);
  return firstSupported(ranked.map((r) => r.tag));
}

/**
 * The page's language: the client's `ui_locales`, then the signed-in user's saved preference, then the browser's
 * `Accept-Language`, then English.
 */
export function negotiateLocale(input: {
  uiLocales?: string | undefined;
  saved?: string | null | undefined;
  acceptLanguage?: string | undefined;
}): Locale {
  return (
    fromUiLocales(input.uiLocales) ??
    (isLocale(input.saved) ? input.saved : undefined) ??
    fromAcceptLanguage(input.acceptLanguage) ??
    DEFAULT_LOCALE
  );
}

/**
 * The language a request asks for by itself, without a saved preference: its `ui_locales` (query or form, or the
 * pending `/authorize` request in its `return_to`), then `Accept-Language`; undefined when it names no supported one.
 * Emails use it when the recipient has saved no language (e.g. the verification email of a new registration).
 */
export function requestLanguage(request: {
  query?: unknown;
  body?: unknown;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}): Locale | undefined {
  const field = (source: unknown, name: string) => {
    const value = source && typeof source === "object" ? (source as Record<string, unknown>)[name] : undefined;
    return typeof value === "string" ? value : undefined;
  };
  const fromReturnTo = (returnTo: string | undefined) => {
    const at = returnTo?.indexOf("?") ?? -1;
    if (!returnTo || at < 0 || returnTo.length > 4096) return undefined;
    return fromUiLocales(new URLSearchParams(returnTo.slice(at + 1)).get("ui_locales") ?? undefined);
  };
  const accept = request.headers["accept-language"];
  return (
    fromUiLocales(field(request.query, "ui_locales") ?? field(request.body, "ui_locales")) ??
    fromReturnTo(field(request.query, "return_to") ?? field(request.body, "return_to")) ??
    fromAcceptLanguage(typeof accept === "string" ? accept : undefined)
  );
}

/** The catalog keys with `{placeholders}` and some words of their own, as patterns matching their English output. */
const PATTERNS = Object.keys(catalogs.en.messages)
  .map((key) => ({ key, words: key.replace(/\{\w+\}/g, "").replace(/[^A-Za-z]/g, "").length }))
  .filter(({ key, words }) => /\{\w+\}/.test(key) && words >= 2)
  .map(({ key, words }) => {
    const names: string[] = [];
    const source = key
      .split(/(\{\w+\})/)
      .map((part) => {
        const name = /^\{(\w+)\}$/.exec(part)?.[1];
        if (!name) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        names.push(name);
        return "(.+?)";
      })
      .join("");
    return { key, names, words, pattern: new RegExp(`^${source}$`) };
  })
  .sort((a, b) => b.words - a.words);

/**
 * The key and parameters of an English message built elsewhere with its values filled in (a password rule's
 * "Use at least 12 characters.", a device's "Chrome on Linux"), so a page can show it in its language; whole numbers
 * become numbers (formatted per locale). Undefined when no catalog message has that shape.
 */
export function matchMessage(text: string): { key: string; params: Record<string, string | number> } | undefined {
  if (text.length > 1000) return undefined;
  for (const { key, names, pattern } of PATTERNS) {
    const match = pattern.exec(text);
    if (!match) continue;
    const params: Record<string, string | number> = {};
    names.forEach((name, i) => {
      const value = match[i + 1] ?? "";
      params[name] = /^\d{1,15}$/.test(value) ? Number(value) : value;
    });
    return { key, params };
  }
  return undefined;
}

export type Params = Readonly<Record<string, string | number>>;

export interface Translator {
  locale: Locale;
  /** The message for an English key with `{name}` parameters filled in (numbers formatted for the locale). */
  t(key: string, params?: Params): string;
  /** The message of an error code; English keeps `fallback` (the error's own message). */
  error(code: string, fallback: string): string;
  /**
   * `t` for HTML output (a template's raw tag): the message is escaped, string parameters too; a `{ html }` parameter
   * (e.g. from `strong()`) goes in as is.
   */
  html(key: string, params?: Readonly<Record<string, string | number | SafeHtml>>): string;
  /**
   * A date in UTC as the locale writes it: `day` (2026-11-30), `minute` (2026-11-30 21:45 UTC) or `full` (with the
   * weekday and seconds). English keeps the ISO-like forms its pages have always shown.
   */
  date(value: Date | string | number, style?: "day" | "minute" | "full"): string;
  number(value: number): string;
}

export interface SafeHtml {
  html: string;
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);

/** Escaped text in `<strong>`, as a parameter of `html()`. */
export const strong = (text: string): SafeHtml => ({ html: `<strong>${escapeHtml(String(text))}</strong>` });

export class UnknownMessageError extends Error {
  override name = "UnknownMessageError";
}

/**
 * A translator for one locale. `strict` throws on a key missing from the catalog (the template tests render every
 * template with it); otherwise a missing key shows its English text, so a page never breaks over a message.
 */
export function translator(locale: Locale, options: { strict?: boolean } = {}): Translator {
  const catalog = catalogs[locale];
  const numbers = new Intl.NumberFormat(locale);
  const formats = {
    day: new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" }),
    minute: new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" }),
    full: new Intl.DateTimeFormat(locale, { dateStyle: "full", timeStyle: "medium", timeZone: "UTC" }),
  };
  const fill = (text: string, params?: Params) =>
    params
      ? text.replace(/\{(\w+)\}/g, (whole, name: string) => {
          const value = params[name];
          if (value === undefined) return whole;
          return typeof value === "number" ? numbers.format(value) : value;
        })
      : text;
  const lookup = (key: string) => {
    const text = catalog.messages[key];
    if (text !== undefined) return text;
    if (options.strict) throw new UnknownMessageError(`No message "${key}" in the ${locale} catalog`);
    return key;
  };
  return {
    locale,
    t: (key, params) => fill(lookup(key), params),
    html(key, params) {
      return escapeHtml(lookup(key)).replace(/\{(\w+)\}/g, (whole, name: string) => {
        const value = params?.[name];
        if (value === undefined) return whole;
        if (typeof value === "object") return value.html;
        return escapeHtml(typeof value === "number" ? numbers.format(value) : value);
      });
    },
    error(code, fallback) {
      if (locale === "en") return fallback;
      return catalog.errors[code as ErrorCode] ?? fallback;
    },
    date(value, style = "minute") {
      const d = value instanceof Date ? value : new Date(value);
      if (Number.isNaN(d.getTime())) return String(value);
      if (locale === "en") {
        if (style === "day") return d.toISOString().slice(0, 10);
        return style === "full" ? d.toUTCString() : utcMinute(d);
      }
      return `${formats[style].format(d)}${style === "day" ? "" : " UTC"}`;
    },
    number: (value) => numbers.format(value),
  };
}

/** `2026-11-30 21:45 UTC` */
export const utcMinute = (at: Date) => `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;
