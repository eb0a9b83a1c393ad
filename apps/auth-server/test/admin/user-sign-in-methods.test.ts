import { identityProviders, passkeys, userIdentities, users } from "@tessera/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../src/libraries/admin.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser } from "../oauth/helpers.ts";
import { seedAdmin } from "./helpers.ts";

/**
 * Issue #14: GET /admin/api/v1/users/:id lists the account's linked sign-in methods — upstream identities and
 * passkeys — for support and full admins, and never a passkey's public key or credential id.
 */

let t: TestApp;
let admin: { authorization: string };
let support: { authorization: string };
let userId: string;
const PUBLIC_KEY = "pQECAyYgASFYIPUBLICKEYMARKER";
const CREDENTIAL_ID = "Y3JlZGVudGlhbC1pZC1tYXJrZXI";

beforeAll(async () => {
  t = await buildOAuthApp();
  admin = await seedAdmin(t.app);
  const supportAdmin = await seedAdmin(t.app, "support@tessera.test");
  await t.app.ctx.db.update(users).set({ adminRole: "support" }).where(eq(users.id, supportAdmin.userId));
  support = {
    authorization: `Bearer ${(await createApiKey(t.app.ctx, { name: "s", email: "support@tessera.test" })).key}`,
  };
  userId = (await createUser(t.app, { email: "linked@example.com" })).id;
  const [provider] = await t.app.ctx.db
    .insert(identityProviders)
    .values({ slug: "discord", kind: "oauth2", preset: "discord", displayName: "Discord" })
    .returning();
  const [identity] = await t.app.ctx.db
    .insert(userIdentities)
    .values({
      userId,
      providerId: provider!.id,
      subject: "80351110224678912",
      email: "player@discord.example",
      linkedAt: new Date("2026-03-04T05:06:07.000Z"),
    })
    .returning();
  identityId = identity!.id;
  const [key] = await t.app.ctx.db
    .insert(passkeys)
    .values({
      userId,
      credentialId: CREDENTIAL_ID,
      publicKey: PUBLIC_KEY,
      name: "YubiKey",
      backedUp: false,
      createdAt: new Date("2026-02-01T08:00:00.000Z"),
      lastUsedAt: new Date("2026-05-06T07:08:09.000Z"),
    })
    .returning();
  passkeyId = key!.id;
});
afterAll(() => t.close());

let identityId: string;
let passkeyId: string;

describe("GET /admin/api/v1/users/:id: sign-in methods", () => {
  it("lists linked identities and passkeys (support and admin alike), without keys or credential ids", async () => {
    for (const caller of [admin, support]) {
      const response = await t.app.inject({
        method: "GET",
        url: `/admin/api/v1/users/${userId}`,
        headers: { authorization: caller.authorization },
      });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.identities).toEqual([
        {
          id: identityId,
          provider: "discord",
          provider_name: "Discord",
          email: "player@discord.example",
          linked_at: "2026-03-04T05:06:07.000Z",
          last_sign_in_at: null,
        },
      ]);
      expect(body.passkeys).toEqual([
        {
          id: passkeyId,
          name: "YubiKey",
          backed_up: false,
          created_at: "2026-02-01T08:00:00.000Z",
          last_used_at: "2026-05-06T07:08:09.000Z",
        },
      ]);
      expect(response.body).not.toContain(PUBLIC_KEY);
      expect(response.body).not.toContain(CREDENTIAL_ID);
    }
  });

  it("an account with none has empty lists", async () => {
    const bare = await createUser(t.app, { email: "bare@example.com" });
    const response = await t.app.inject({
      method: "GET",
      url: `/admin/api/v1/users/${bare.id}`,
      headers: { authorization: admin.authorization },
    });
    expect(response.statusCode).toBe(200);
    expect([response.json().identities, response.json().passkeys]).toEqual([[], []]);
  });
});
