import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ipBlock } from "../../src/libraries/privacy/activity.ts";
import { type AccountsTestApp, Browser, buildAccountsApp, PASSWORD } from "../accounts/helpers.ts";
import { createUser } from "../oauth/helpers.ts";

/** The account page's security activity (#16): sign-ins, new devices, password changes — the user's own only. */
let t: AccountsTestApp;

beforeAll(async () => {
  t = await buildAccountsApp({ RATE_LIMIT_LOGIN: "1000/60", RATE_LIMIT_PASSWORD: "1000/60" });
});
afterAll(() => t.close());

const section = (html: string) =>
  html.slice(html.indexOf('id="activity"'), html.indexOf("</section>", html.indexOf('id="activity"')));

describe("security activity", () => {
  it("lists sign-ins, marks the first from a new device, shows a password change, and nothing of others", async () => {
    const email = "activity@example.com";
    await createUser(t.app, { email, password: PASSWORD });
    await createUser(t.app, { email: "activity-other@example.com", password: PASSWORD });
    const desk = new Browser(t.app);
    await desk.json("POST", "/api/v1/login", { email, password: PASSWORD });
    await new Browser(t.app).json("POST", "/api/v1/login", { email, password: PASSWORD }); // same browser kind
    const phone = new Browser(
      t.app,
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1",
    );
    await phone.json("POST", "/api/v1/login", { email, password: PASSWORD });
    const other = new Browser(t.app, "OtherAgent/1.0");
    await other.json("POST", "/api/v1/login", { email: "activity-other@example.com", password: PASSWORD });
    const changed = await desk.json("POST", "/api/v1/me/password", {
      currentPassword: PASSWORD,
      newPassword: `${PASSWORD}!2`,
    });
    expect(changed.statusCode).toBeLessThan(300);

    const page = await desk.get("/account");
    expect(page.statusCode).toBe(200);
    const html = section(page.body);
    expect(html).toContain("Security activity");
    const items = [...html.matchAll(/<div class="device">([^<]*)(<span class="badge">New device<\/span>)?/g)].map(
      (m) => `${m[1]?.trim()}${m[2] ? " [new]" : ""}`,
    );
    expect(items).toEqual(["Password changed", "Signed in [new]", "Signed in", "Signed in"]);
    expect(html).not.toContain("OtherAgent");
    expect(html).toContain('href="/account/export"');
  });

  it("groups addresses by network block", () => {
    expect(ipBlock("198.51.100.7")).toBe("198.51.100");
    expect(ipBlock("2001:DB8:1:2::1")).toBe("2001:db8:1");
    expect(ipBlock(null)).toBe("");
  });
});
