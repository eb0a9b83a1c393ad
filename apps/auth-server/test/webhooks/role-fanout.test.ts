import { webhookDeliveries, webhookFanouts } from "@tessera/db";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRole } from "../../src/libraries/authorization/index.ts";
import { expandWebhookFanouts } from "../../src/libraries/jobs/webhooks.ts";
import { expandFanoutBatch } from "../../src/queries/webhooks.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, registerClient, sessionCookie } from "../oauth/helpers.ts";
import { seedAdmin, setWebhook } from "./helpers.ts";

/**
 * A catalog-wide role change with thousands of holders (#16): the admin's request writes O(1) rows (one fan-out row,
 * no delivery), and the worker's expansion afterwards queues exactly one `roles.changed` per holder and app the holder
 * used, in batches of 500, each batch atomic: a batch whose transaction dies is done again without duplicates or
 * losses, and two workers expanding at once never take the same batch.
 */
const HOLDERS = 3000;
const SHOP_USERS = 1000;
const META = { ip: "127.0.0.1", userAgent: "vitest" };

let t: TestApp;
let admin: string;
let game: Awaited<ReturnType<typeof registerClient>>;
let shop: Awaited<ReturnType<typeof registerClient>>;

beforeAll(async () => {
  t = await buildOAuthApp();
  admin = (await seedAdmin(t.app)).authorization;
  game = await registerClient(t.app);
  shop = await registerClient(t.app);
  await setWebhook(t.app, admin, game.clientId, { url: "https://game.example/hooks", events: ["roles.changed"] });
  await setWebhook(t.app, admin, shop.clientId, { url: "https://shop.example/hooks", events: ["roles.changed"] });
});
afterAll(() => t.close());

const count = async (table: typeof webhookDeliveries | typeof webhookFanouts) =>
  (await t.app.ctx.db.select({ n: sql<number>`count(*)::int` }).from(table))[0]?.n;

/**
 * HOLDERS users holding a global role, made in bulk (set-based inserts, no argon2): every one used the game (was
 * issued a code), the first SHOP_USERS the shop too. One real session carries the codes (only its id is needed).
 */
async function seedHolders(roleId: string): Promise<void> {
  const owner = await createUser(t.app);
  const sessionId = (await sessionCookie(t.app, owner)).session.id;
  await t.app.ctx.db.execute(sql`
    with made as (
      insert into users (email, display_name)
      select 'holder' || n || '@example.com', 'Holder ' || n from generate_series(1, ${HOLDERS}) as n
      returning id, email
    ), numbered as (
      select id, row_number() over (order by email) as n from made
    ), assigned as (
      insert into user_roles (user_id, role_id) select id, ${roleId}::uuid from numbered returning user_id
    )
    insert into authorization_codes
      (code_hash, client_id, user_id, session_id, redirect_uri, code_challenge, scope, auth_time, expires_at)
    select md5(random()::text || c.id::text || numbered.id::text), c.id, numbered.id, ${sessionId}::uuid,
      'https://x.example/cb', 'x', 'openid', now(), now()
    from numbered
    join clients c on c.id = ${game.client.id}::uuid or (c.id = ${shop.client.id}::uuid and numbered.n <= ${SHOP_USERS})`);
}

describe("roles.changed fan-out at scale", () => {
  it("the admin request writes one row; the expansion queues each holder and app exactly once, crash-safe", async () => {
    const role = await createRole(t.app.ctx, null, { name: "veteran" }, { actorId: null, meta: META, via: "test" });
    await seedHolders(role.id);
    expect(await count(webhookDeliveries)).toBe(0);

    const deleted = await t.app.inject({
      method: "DELETE",
      url: `/admin/api/v1/roles/${role.id}`,
      headers: { authorization: admin },
    });
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json().assignments_removed).toBe(HOLDERS);
    // O(1) rows in the admin's transaction: one fan-out (the global role's scope), no delivery yet.
    expect(await count(webhookDeliveries)).toBe(0);
    expect(await count(webhookFanouts)).toBe(1);

    // A batch whose transaction dies (a crash mid-expansion) leaves nothing behind and no progress.
    await expect(
      t.app.ctx.db.transaction(async (tx) => {
        expect(await expandFanoutBatch(tx, 500)).toBe(500);
        throw new Error("crash");
      }),
    ).rejects.toThrow("crash");
    expect(await count(webhookDeliveries)).toBe(0);
    const [pending] = await t.app.ctx.db.select().from(webhookFanouts);
    expect(pending?.expanded).toBe(0);

    // Two batches, then two workers at once finish it.
    expect(await expandWebhookFanouts(t.app.ctx, { maxBatches: 2 })).toBe(1000);
    expect((await t.app.ctx.db.select().from(webhookFanouts))[0]?.expanded).toBe(1000);
    const [a, b] = await Promise.all([expandWebhookFanouts(t.app.ctx), expandWebhookFanouts(t.app.ctx)]);
    expect((a ?? 0) + (b ?? 0)).toBe(HOLDERS - 1000);
    expect(await count(webhookFanouts)).toBe(0);

    const perApp = await t.app.ctx.db.execute(sql`
      select client_id, count(*)::int as events, count(distinct user_id)::int as users,
        bool_and(event_type = 'roles.changed' and payload->'data'->>'sub' = user_id::text) as well_formed
      from webhook_deliveries group by client_id`);
    const byClient = new Map(
      ((perApp as { rows?: unknown[] }).rows ?? (perApp as unknown as unknown[])).map((r) => {
        const row = r as { client_id: string; events: number; users: number; well_formed: boolean };
        return [row.client_id, row];
      }),
    );
    expect(byClient.get(game.client.id)).toEqual({
      client_id: game.client.id,
      events: HOLDERS,
      users: HOLDERS,
      well_formed: true,
    });
    expect(byClient.get(shop.client.id)).toEqual({
      client_id: shop.client.id,
      events: SHOP_USERS,
      users: SHOP_USERS,
      well_formed: true,
    });
    expect(await expandWebhookFanouts(t.app.ctx)).toBe(0);
  });
});
