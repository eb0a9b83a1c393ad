import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { OutboxMailer } from "../../src/libraries/mailer/index.ts";
import { buildTestApp, type TestApp } from "../helpers.ts";

export const PASSWORD = "correct horse battery staple";

export interface AccountsTestApp extends TestApp {
  outbox: OutboxMailer;
}

/**
 * These suites make many deliberate failures from one IP; failed sign-in throttling (libraries/throttle.ts, tested in
 * its own suite) is set out of reach so each test sees the account behaviour it is about.
 */
const NO_THROTTLING = {
  THROTTLE_IP_MAX_FAILURES: "100000",
  THROTTLE_ACCOUNT_FREE_FAILURES: "1000",
  THROTTLE_ACCOUNT_LOCK_THRESHOLD: "10000",
  // The anti-enumeration response floor is measured in enumeration.test.ts; elsewhere it would only add wall time.
  ACCOUNT_RESPONSE_FLOOR_MS: "0",
};

/** The test app with its development outbox (the default mailer outside production). */
export async function buildAccountsApp(env: Record<string, string> = {}): Promise<AccountsTestApp> {
  const testApp = await buildTestApp({ ...NO_THROTTLING, ...env });
  const outbox = testApp.app.ctx.mailer;
  if (!(outbox instanceof OutboxMailer)) throw new Error("expected the outbox mailer in tests");
  return { ...testApp, outbox };
}

/** A cookie jar over `inject()`, like one browser: keeps Set-Cookie values and sends them back. */
export class Browser {
  readonly cookies = new Map<string, string>();
  constructor(
    readonly app: FastifyInstance,
    readonly userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  private remember(response: LightMyRequestResponse): void {
    for (const c of response.cookies as { name: string; value: string; expires?: Date; maxAge?: number }[]) {
      const expired = (c.expires && c.expires.getTime() <= Date.now()) || c.maxAge === 0 || c.value === "";
      if (expired) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const response = await this.app.inject({
      method: "GET",
      url,
      headers: { cookie: this.cookieHeader(), "user-agent": this.userAgent, ...headers },
    });
    this.remember(response);
    return response;
  }

  /** Posts a form as a browser does (application/x-www-form-urlencoded). */
  async post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
    const response = await this.app.inject({
      method: "POST",
      url,
      headers: {
        cookie: this.cookieHeader(),
        "user-agent": this.userAgent,
        "content-type": "application/x-www-form-urlencoded",
        ...headers,
      },
      payload: new URLSearchParams(fields).toString(),
    });
    this.remember(response);
    return response;
  }

  /** Loads a page and submits its form (the one posting to `action`, default: the page's path) with its CSRF token. */
  async submit(pageUrl: string, fields: Record<string, string>, action?: string) {
    const page = await this.get(pageUrl);
    if (page.statusCode !== 200) throw new Error(`GET ${pageUrl} answered ${page.statusCode}`);
    const target = action ?? pageUrl.split("?")[0]!;
    const form = formFor(page.body, target);
    return this.post(target, { ...form, ...fields });
  }

  async json(method: "GET" | "POST" | "PATCH", url: string, body?: unknown, headers: Record<string, string> = {}) {
    const response = await this.app.inject({
      method,
      url,
      headers: {
        cookie: this.cookieHeader(),
        "user-agent": this.userAgent,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    this.remember(response);
    return response;
  }
}

/** The hidden inputs of the first form posting to `action` (CSRF token, continuation, token). */
export function formFor(html: string, action: string): Record<string, string> {
  const forms = [...html.matchAll(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/g)];
  const form = forms.find((m) => decode(m[1]!) === action);
  if (!form) throw new Error(`no form posting to ${action}`);
  const fields: Record<string, string> = {};
  for (const input of form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[decode(input[1]!)] = decode(input[2]!);
  }
  return fields;
}

export function decode(value: string): string {
  return value
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** The path and query of the first link in the newest email of a kind sent to `to`. */
export function linkFrom(outbox: OutboxMailer, to: string, kind: string): string {
  const message = outbox.to(to).find((m) => m.kind === kind);
  if (!message) throw new Error(`no ${kind} email to ${to}`);
  const match = message.text.match(/https?:\/\/\S+/);
  if (!match) throw new Error("no link in the email");
  const url = new URL(match[0]);
  return url.pathname + url.search;
}

export function tokenFrom(link: string): string {
  return new URL(link, "http://x").searchParams.get("token") ?? "";
}

/**
 * Registers and verifies an account through the JSON API, then signs in with the password (the verification link
 * signs nobody in); returns a browser signed in as it.
 */
export async function createVerifiedAccount(
  testApp: AccountsTestApp,
  email: string,
  password = PASSWORD,
): Promise<Browser> {
  const browser = new Browser(testApp.app);
  const registered = await browser.json("POST", "/api/v1/register", { email, password });
  if (registered.statusCode !== 202) throw new Error(`register answered ${registered.statusCode}: ${registered.body}`);
  const token = tokenFrom(linkFrom(testApp.outbox, email, "verify_email"));
  const verified = await browser.json("POST", "/api/v1/verify-email", { token });
  if (verified.statusCode !== 200) throw new Error(`verify answered ${verified.statusCode}: ${verified.body}`);
  const signedIn = await browser.json("POST", "/api/v1/login", { email, password });
  if (signedIn.statusCode !== 200) throw new Error(`login answered ${signedIn.statusCode}: ${signedIn.body}`);
  return browser;
}

export function sessionCookieName(): string {
  return "tessera_session";
}
