import { auditEvents, termsAcceptances } from "@tessera/db";
import { and, asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UserRow } from "../../src/libraries/sessions.ts";
import type { TestApp } from "../helpers.ts";
import { basic, buildOAuthApp, createUser, FORM, form, registerClient, type TestClient } from "../oauth/helpers.ts";

/**
 * Terms on the direct (server-to-server) sign-in (#16): a first-party game's back end gets no tokens for a user who
 * has not accepted the current terms/privacy versions. It is told TERMS_ACCEPTANCE_REQUIRED (invalid_grant) with the
 * documents to show, and retries naming the current versions, which records the acceptance like the /authorize
 * interstitial. A version that is not the current one is refused.
 */
let t: TestApp;
let game: TestClient;
const PASSWORD = "correct horse battery staple";
const DOCUMENTS = [
  { kind: "terms", version: "2026-12", url: "https://tessera.example/terms" },
  { kind: "privacy", version: "p8", url: "https://tessera.example/privacy" },
];

beforeAll(async () => {
  t = await buildOAuthApp({
    TERMS_VERSION: "2026-12",
    TERMS_URL: "https://tessera.example/terms",
    PRIVACY_VERSION: "p8",
    PRIVACY_URL: "https://tessera.example/privacy",
    THROTTLE_IP_MAX_FAILURES: "100000",
  });
  game = await registerClient(t.app, { name: "Game", directSignIn: true });
});
afterAll(() => t.close());

const signIn = (user: UserRow, fields: Record<string, string> = {}, password = PASSWORD) =>
  t.app.inject({
    method: "POST",
    url: "/api/v1/clients/sessions",
    headers: { ...FORM, authorization: basic(game.clientId, game.secret) },
    payload: form({ username: user.email, password, ...fields }),
  });

async function userAccepted(terms: string | null, privacy: string | null): Promise<UserRow> {
  const user = await createUser(t.app, { password: PASSWORD });
  if (terms || privacy) {
    await t.app.ctx.db.insert(termsAcceptances).values({
      userId: user.id,
      termsVersion: terms,
      privacyVersion: privacy,
      context: "register",
      acceptedAt: new Date(t.clock.now().getTime() - 86400_000),
    });
  }
  return user;
}

const acceptances = (user: UserRow) =>
  t.app.ctx.db
    .select({
      termsVersion: termsAcceptances.termsVersion,
      privacyVersion: termsAcceptances.privacyVersion,
      context: termsAcceptances.context,
    })
    .from(termsAcceptances)
    .where(eq(termsAcceptances.userId, user.id))
    .orderBy(asc(termsAcceptances.acceptedAt));

const REQUIRED = {
  error: "invalid_grant",
  error_description: "The user must accept the current terms of service and privacy notice first.",
  tessera_code: "TERMS_ACCEPTANCE_REQUIRED",
  required_documents: DOCUMENTS,
};

describe("direct sign-in and the terms", () => {
  it("refuses tokens to a user with an outdated acceptance, listing the documents, and issues no session", async () => {
    const user = await userAccepted("2026-11", "p8");
    const response = await signIn(user);
    expect(response.statusCode).toBe(400);
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(response.json()).toEqual(REQUIRED);
    const signedIn = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "user.signed_in"), eq(auditEvents.userId, user.id)));
    expect(signedIn).toEqual([]);
    expect(await acceptances(user)).toHaveLength(1);
  });

  it("a user who never accepted (made by an admin or an upstream sign-in) is asked too", async () => {
    const response = await signIn(await userAccepted(null, null));
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual(REQUIRED);
  });

  it("a wrong password says nothing about the terms (no hint about the account)", async () => {
    const response = await signIn(await userAccepted("2026-11", "p8"), {}, "wrong wrong wrong");
    expect(response.json()).toEqual({
      error: "invalid_grant",
      error_description: "The email or password is incorrect.",
    });
  });

  it("the retry naming the current versions records the acceptance and returns tokens", async () => {
    const user = await userAccepted("2026-11", "p8");
    expect((await signIn(user)).statusCode).toBe(400);
    const response = await signIn(user, { accept_terms_version: "2026-12", accept_privacy_version: "p8" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ token_type: "Bearer" });
    expect(await acceptances(user)).toEqual([
      { termsVersion: "2026-11", privacyVersion: "p8", context: "register" },
      { termsVersion: "2026-12", privacyVersion: "p8", context: "sign_in" },
    ]);
    const [event] = await t.app.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.event, "user.signed_in"), eq(auditEvents.userId, user.id)));
    expect(event?.details).toMatchObject({ via: "direct", termsAccepted: ["terms@2026-12", "privacy@p8"] });
    // Accepted once: the next sign-in needs nothing and records nothing.
    expect((await signIn(user)).statusCode).toBe(200);
    expect(await acceptances(user)).toHaveLength(2);
  });

  it("refuses an outdated version, and an acceptance naming only one of the documents", async () => {
    const user = await userAccepted("2026-11", "p8");
    const stale = await signIn(user, { accept_terms_version: "2026-11", accept_privacy_version: "p8" });
    expect(stale.statusCode).toBe(400);
    expect(stale.json()).toEqual({
      ...REQUIRED,
      error_description: "The accepted version is not the current one; show the current documents and ask again.",
    });
    const partial = await signIn(user, { accept_terms_version: "2026-12" });
    expect(partial.json()).toEqual(REQUIRED);
    expect(await acceptances(user)).toHaveLength(1);
  });

  it("an outdated version is refused even from a user who needs no acceptance", async () => {
    const user = await userAccepted("2026-12", "p8");
    expect((await signIn(user)).statusCode).toBe(200);
    const stale = await signIn(user, { accept_terms_version: "2026-10", accept_privacy_version: "p8" });
    expect(stale.statusCode).toBe(400);
    expect(stale.json().tessera_code).toBe("TERMS_ACCEPTANCE_REQUIRED");
  });
});
