import { userEntitlements } from "@tessera/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionCookieName } from "../../src/http/session.ts";
import {
  assignRole,
  createRole,
  ensureEntitlements,
  grantEntitlement,
} from "../../src/libraries/authorization/index.ts";
import { createUser, registerClient, sessionCookie } from "../oauth/helpers.ts";
import { type BrowserSuite, startBrowserSuite } from "./harness.ts";

/**
 * The account page's "roles and what you own" section in a real browser: which app gives which role, what the user
 * owns and where (bought or granted), nothing expired, app names escaped. Screenshot in test-output/browser/authorization.
 */
let suite: BrowserSuite;
const ACTOR = { actorId: null, meta: { ip: undefined, userAgent: "vitest" }, via: "test" };

beforeAll(async () => {
  suite = await startBrowserSuite("authorization");
});
afterAll(() => suite?.close());

describe("account page: roles and entitlements", () => {
  it("shows the user's roles per app and what they own, and nothing that has expired", async () => {
    const { app, base, context } = suite;
    const game = await registerClient(app, { name: "Arena <b>Game</b>" });
    const user = await createUser(app, { email: "owner@example.com" });
    const moderator = await createRole(
      app.ctx,
      game.clientId,
      { name: "moderator", permissions: ["chat:mute"] },
      ACTOR,
    );
    const staff = await createRole(app.ctx, null, { name: "staff" }, ACTOR);
    const old = await createRole(app.ctx, game.clientId, { name: "ex-helper" }, ACTOR);
    await assignRole(app.ctx, user.id, { roleId: moderator.id }, ACTOR);
    await assignRole(app.ctx, user.id, { roleId: staff.id }, ACTOR);
    const soon = new Date(Date.now() + 1500).toISOString();
    await assignRole(app.ctx, user.id, { roleId: old.id, expiresAt: soon }, ACTOR);
    await grantEntitlement(app.ctx, user.id, { name: "premium", clientIds: [game.clientId] }, ACTOR);
    await app.ctx.db.transaction(async (tx) => {
      const ids = await ensureEntitlements(app.ctx, tx, ["season-pass-3"]);
      await tx.insert(userEntitlements).values({
        userId: user.id,
        entitlementId: ids.get("season-pass-3") as string,
        source: "purchase",
        sourceRef: "purchase-42",
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 1600)); // the ex-helper assignment expires
    const { cookie } = await sessionCookie(app, user);
    const value = cookie.slice(cookie.indexOf("=") + 1);
    await context.addCookies([{ name: sessionCookieName(app.ctx.config), value, url: base }]);

    const page = await context.newPage();
    await page.goto(`${base}/account`);
    const section = page.getByTestId("authorization");
    await expect(section.getByRole("heading", { name: "Your roles and what you own" }).count()).resolves.toBe(1);
    const roles = await page.getByTestId("roles").locator("li").allInnerTexts();
    expect(roles.map((r) => r.replace(/\s+/g, " ").trim())).toEqual([
      "staff in every app",
      "moderator in Arena <b>Game</b>",
    ]);
    const owned = await page.getByTestId("entitlements").locator("li").allInnerTexts();
    expect(owned.map((r) => r.replace(/\s+/g, " ").trim())).toEqual([
      "premium in Arena <b>Game</b> · granted",
      "season-pass-3 in every app · purchased",
    ]);
    // The app name is text, not markup.
    await expect(section.locator("b").count()).resolves.toBe(0);
    await suite.shot(page, "account-authorization");
  });
});
