import { users } from "@tessera/db";
import { eq } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import type { AdminLevel } from "../../src/libraries/admin/levels.ts";
import { createAdmin } from "../../src/libraries/admin.ts";
import type { TestClock } from "../../src/libraries/clock.ts";
import { beginTotpEnrolment, confirmTotpEnrolment } from "../../src/libraries/mfa/enrolment.ts";
import { currentCode } from "../../src/libraries/mfa/factor.ts";
import { signIn } from "../../src/libraries/sessions.ts";
import { Browser, formFor, PASSWORD } from "../accounts/helpers.ts";

const META = { ip: "127.0.0.1", userAgent: "test" };

export interface ConsoleUser {
  userId: string;
  email: string;
  browser: Browser;
  /** A fresh TOTP code (moves the test clock one 30 s step, so each code is a new one). */
  nextCode(): string;
}

/**
 * An admin (or support admin) ready for the console: two-step verification on, and a browser whose session was signed
 * in with password and code (amr pwd otp). Options make the incomplete cases: no factor, or a session without code.
 */
export async function consoleUser(
  app: FastifyInstance,
  clock: TestClock,
  input: { email: string; level: AdminLevel | null; totp?: boolean; amr?: string[] },
): Promise<ConsoleUser> {
  const { user } = await createAdmin(app.ctx, { email: input.email, password: PASSWORD, force: true });
  await app.ctx.db
    .update(users)
    .set({ isAdmin: input.level !== null, adminRole: input.level })
    .where(eq(users.id, user.id));
  let secret = "";
  if (input.totp !== false) {
    secret = (await beginTotpEnrolment(app.ctx, META, user)).secret;
    await confirmTotpEnrolment(app.ctx, META, { userId: user.id, code: currentCode(secret, clock.now()) });
  }
  const { token } = await signIn(app.ctx, app.ctx.db, {
    userId: user.id,
    amr: input.amr ?? ["pwd", "otp"],
    meta: META,
  });
  const browser = new Browser(app);
  browser.cookies.set("tessera_session", token);
  return {
    userId: user.id,
    email: input.email,
    browser,
    nextCode() {
      clock.advance(30);
      return currentCode(secret, clock.now());
    },
  };
}

/** A CSRF token for a browser (from the sign-in form; the token is bound to the browser's CSRF cookie). */
export async function csrfOf(browser: Browser): Promise<string> {
  const page = await browser.get("/login?prompt=login");
  return formFor(page.body, "/login")._csrf!;
}

/** Posts a form whose fields may repeat (checkbox groups), as a browser sends it. */
export async function postPairs(browser: Browser, url: string, pairs: Array<[string, string]>) {
  const response = await browser.app.inject({
    method: "POST",
    url,
    headers: {
      cookie: browser.cookieHeader(),
      "user-agent": browser.userAgent,
      "content-type": "application/x-www-form-urlencoded",
    },
    payload: new URLSearchParams(pairs).toString(),
  });
  return response;
}
