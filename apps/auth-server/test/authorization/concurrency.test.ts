import { auditEvents, userRoles } from "@tessera/db";
import { and, asc, eq, inArray } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AppError } from "../../src/errors/index.ts";
import { assignRole, createRole, deleteRole, unassignRole } from "../../src/libraries/authorization/index.ts";
import type { TestApp } from "../helpers.ts";
import { buildOAuthApp, createUser, registerClient, type TestClient } from "../oauth/helpers.ts";
import { ACTOR } from "./helpers.ts";

/**
 * Parallel assign/unassign of one role to one user end in one consistent state: the changes are serialized (the
 * user's row is locked), so the audit trail, in commit order, is a chain where each change's "before" is the previous
 * one's "after", and the table holds exactly what the last change left. Meaningful on real PostgreSQL
 * (TEST_DATABASE_URL), where the transactions truly overlap; on PGlite they run one after another.
 */
let t: TestApp;
let app: FastifyInstance;
let game: TestClient;

beforeAll(async () => {
  t = await buildOAuthApp();
  app = t.app;
  game = await registerClient(app, { name: "Game" });
});
afterAll(async () => t.close());

const expected = (error: unknown) => {
  if (error instanceof AppError && ["ROLE_NOT_ASSIGNED", "ROLE_NOT_FOUND"].includes(error.code)) return error.code;
  throw error;
};

it("parallel assign and unassign of the same role end in one consistent state", async () => {
  const user = await createUser(app);
  const role = await createRole(app.ctx, game.clientId, { name: "racer", permissions: ["race:win"] }, ACTOR);
  const later = (i: number) => new Date(t.clock.now().getTime() + (i + 1) * 60_000).toISOString();
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      (i % 2 === 0
        ? assignRole(app.ctx, user.id, { roleId: role.id, expiresAt: later(i) }, ACTOR).then(() => "assigned")
        : unassignRole(app.ctx, user.id, role.id, ACTOR).then(() => "unassigned")
      ).catch(expected),
    ),
  );
  expect(results.filter((r) => r === "assigned")).toHaveLength(20);

  const trail = await app.ctx.db
    .select()
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.userId, user.id),
        inArray(auditEvents.event, ["admin.role_assigned", "admin.role_unassigned"]),
      ),
    )
    .orderBy(asc(auditEvents.id));
  const successes = results.filter((r) => r === "assigned" || r === "unassigned").length;
  expect(trail).toHaveLength(successes);
  let state: unknown = null;
  for (const event of trail) {
    const details = event.details as { before: unknown; after: unknown };
    expect(details.before).toEqual(state);
    state = details.after;
  }
  const rows = await app.ctx.db.select().from(userRoles).where(eq(userRoles.userId, user.id));
  expect(rows.map((r) => ({ role_id: r.roleId, expires_at: r.expiresAt?.toISOString() ?? null }))).toEqual(
    state === null ? [] : [state],
  );
  // Unassigns that found nothing answered ROLE_NOT_ASSIGNED, never an error of another kind.
  expect(results.every((r) => ["assigned", "unassigned", "ROLE_NOT_ASSIGNED"].includes(r as string))).toBe(true);
});

it("assignments racing a role's deletion leave no assignment of the deleted role", async () => {
  const user = await createUser(app);
  const role = await createRole(app.ctx, game.clientId, { name: "doomed" }, ACTOR);
  const results = await Promise.all([
    ...Array.from({ length: 10 }, () =>
      assignRole(app.ctx, user.id, { roleId: role.id }, ACTOR)
        .then(() => "assigned")
        .catch(expected),
    ),
    deleteRole(app.ctx, game.clientId, role.id, ACTOR).then(() => "deleted"),
  ]);
  expect(results).toContain("deleted");
  expect(results.every((r) => ["assigned", "deleted", "ROLE_NOT_FOUND"].includes(r as string))).toBe(true);
  expect(await app.ctx.db.select().from(userRoles).where(eq(userRoles.roleId, role.id))).toEqual([]);
});
