/**
 * pnpm bench explain: fills a throwaway PostgreSQL database with ~1M refresh tokens (200k sessions, 50k users, 20
 * clients, 100k authorization codes, 50k DPoP-bound chains) and prints the plan PostgreSQL uses for every hot query and every sweeper query.
 *
 * The SQL is not written out here: the real query functions run once (inside a transaction that is rolled back) on
 * a Drizzle instance that records each statement, and each recorded statement is then PREPAREd and EXPLAINed: the hot
 * ones (prepared statements in the server) with plan_cache_mode = force_generic_plan, the plan a prepared statement
 * ends up with after a few executions (no help from the literal values); the sweeper's (sent unprepared) with
 * force_custom_plan, as they are planned for their actual values. BENCH_DATABASE_URL as in bench/oauth.mjs; ROWS to change
 * the number of refresh tokens.
 */
import { deleteGarbageBatch } from "../apps/auth-server/src/queries/admin-maintenance.ts";
import { findActiveClientByClientId } from "../apps/auth-server/src/queries/clients.ts";
import {
  consumeAuthorizationCode,
  lockSessionWithUser,
  revokeTokensIssuedFromCode,
} from "../apps/auth-server/src/queries/codes.ts";
import { rotateInOneStatement } from "../apps/auth-server/src/queries/refresh-rotation.ts";
import {
  deleteSupersededToken,
  findAccessTokenOwners,
  findChildToken,
  findRefreshTokenByHash,
  insertRefreshTokenRow,
  lockChainByChainId,
  lockRefreshTokenByHash,
  retireRefreshToken,
  revokeClientChain,
  slideSessionIdle,
} from "../apps/auth-server/src/queries/refresh-tokens.ts";
import { type Database, schema } from "../packages/db/src/index.ts";
import { postgres, withThrowawayDatabase } from "./throwaway-database.ts";

// bench/ has no dependencies of its own: drizzle-orm as packages/db has it.
const { drizzle } = (await import(
  "../packages/db/node_modules/drizzle-orm/postgres-js/index.js"
)) as typeof import("../packages/db/node_modules/drizzle-orm/postgres-js/index.d.ts");

const ROWS = Number(process.env.ROWS ?? 1_000_000);
await withThrowawayDatabase("tessera_explain", async (url) => {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const started = performance.now();
  console.log(`filling ${ROWS} refresh tokens…`);
  await sql.unsafe(`
    insert into users (id, email, created_at, updated_at)
      select md5('u' || i)::uuid, 'u' || i || '@example.com', now(), now() from generate_series(1, 50000) i;
    insert into clients (id, client_id, name, client_secret_hash)
      select md5('c' || i)::uuid, 'client-' || i, 'Client ' || i, md5('s' || i) from generate_series(1, 20) i;
    insert into sessions (id, token_hash, user_id, authenticated_at, last_seen_at, expires_at, idle_expires_at,
                          revoked_at)
      select md5('s' || i)::uuid, md5('st' || i), md5('u' || (i % 50000 + 1))::uuid, now(), now(),
             now() + case when i % 20 = 0 then interval '-40 days' else interval '20 days' end,
             now() + case when i % 20 = 1 then interval '-10 days' else interval '5 days' end,
             case when i % 20 = 2 then now() - interval '10 days' end
      from generate_series(1, 200000) i;
    insert into authorization_codes (code_hash, client_id, user_id, session_id, redirect_uri, code_challenge, scope,
                                     auth_time, expires_at, consumed_at)
      select md5('code' || i), md5('c' || (i % 20 + 1))::uuid, md5('u' || (i % 200000 % 50000 + 1))::uuid,
             md5('s' || (i % 200000 + 1))::uuid, 'https://c.example/cb', 'x', 'openid', now(),
             now() + case when i % 2 = 0 then interval '-1 day' else interval '1 minute' end,
             case when i % 3 = 0 then now() end
      from generate_series(1, 100000) i;
    insert into refresh_tokens (token_hash, session_id, client_id, user_id, parent_id, chain_id, scope,
                                authorization_code_id, created_at, rotated_at, revoked_at)
      select md5('rt' || i) || md5('rt2' || i), md5('s' || (i % 200000 + 1))::uuid, md5('c' || (i % 20 + 1))::uuid,
             md5('u' || (i % 200000 % 50000 + 1))::uuid,
             case when i % 2 = 0 then md5('rt-parent' || i)::uuid end, md5('chain' || (i / 2))::uuid,
             'openid offline_access', case when i % 10 = 0 then md5('ac' || i)::uuid end, now(),
             case when i % 2 = 1 then now() - interval '1 hour' end,
             case when i % 33 = 0 then now() - interval '10 days' end
      from generate_series(1, ${ROWS}) i;
    insert into dpop_bindings (chain_id, jkt, created_at)
      select md5('chain' || i)::uuid, md5('jkt' || i), now() from generate_series(1, ${ROWS / 2}, 10) i;
    analyze;
  `);
  console.log(`filled in ${((performance.now() - started) / 1000).toFixed(0)} s`);

  // Record the statements the real query functions send.
  const recorded: Array<{ label: string; query: string; params: unknown[] }> = [];
  let label = "";
  const client = postgres(url, { max: 1, onnotice: () => {} });
  const db = drizzle(client, {
    schema,
    casing: "snake_case",
    logger: { logQuery: (query, params) => recorded.push({ label, query, params }) },
  }) as unknown as Database;
  const [row] = await sql`select id, session_id, client_id, user_id, chain_id from refresh_tokens limit 1`;
  const now = new Date();
  const cutoff = new Date(now.getTime() - 7 * 86400_000);
  // The one-statement rotation is sent through postgres.js's unsafe(), not Drizzle: record it from a stand-in client
  // that has a known clock offset (so the statement is built) and answers no row.
  const recordingClient = {
    unsafe: async (query: string, params: unknown[]) => {
      recorded.push({ label, query, params });
      return [];
    },
    [Symbol.for("tessera.databaseClock")]: { requestDeadline: () => new Date(now.getTime() + 5000).toISOString() },
  };
  const steps: Array<[string, (tx: Database) => Promise<unknown>]> = [
    [
      "refresh: the one-statement rotation (token, owners, session lock, retire, prune, insert)",
      () =>
        rotateInOneStatement({ session: { client: recordingClient } } as unknown as Database, {
          tokenHash: "x",
          chainId: row?.chain_id,
          clientId: row?.client_id,
          dpopJkt: null,
          successorHash: "explain-successor",
          now,
          idleTtlSeconds: 86400,
          slideStepSeconds: 60,
        }),
    ],
    ["refresh: token + owners, session locked (by token_hash)", (tx) => lockRefreshTokenByHash(tx, "x")],
    ["refresh: older generation, by chain id", (tx) => lockChainByChainId(tx, row?.chain_id)],
    ["refresh: retire (conditional UPDATE)", (tx) => retireRefreshToken(tx, row?.id, now)],
    ["refresh: delete the superseded generation", (tx) => deleteSupersededToken(tx, row?.id)],
    [
      "refresh: slide the session",
      (tx) => slideSessionIdle(tx, row?.session_id, { lastSeenAt: now, idleExpiresAt: now }),
    ],
    [
      "refresh/code: insert the successor",
      (tx) =>
        insertRefreshTokenRow(tx, {
          tokenHash: "explain",
          sessionId: row?.session_id,
          clientId: row?.client_id,
          userId: row?.user_id,
          parentId: row?.id,
          chainId: row?.chain_id,
          authorizationCodeId: null,
          scope: "openid",
          createdAt: now,
        }),
    ],
    [
      "refresh: grace window, the successor (by session and parent_id)",
      (tx) => findChildToken(tx, row?.session_id, row?.id),
    ],
    ["introspect/revoke: refresh token by hash", (tx) => findRefreshTokenByHash(tx, "x")],
    [
      "userinfo/introspect: session, user, client, live chain",
      (tx) => findAccessTokenOwners(tx, row?.session_id, "client-1"),
    ],
    ["client authentication: active client by client_id", (tx) => findActiveClientByClientId(tx, "client-1")],
    ["code grant: consume the code", (tx) => consumeAuthorizationCode(tx, "x", now)],
    ["code grant: session + user, locked", (tx) => lockSessionWithUser(tx, row?.session_id)],
    [
      "code replay: tokens issued from the code, then the chain",
      (tx) =>
        revokeTokensIssuedFromCode(
          tx,
          { id: row?.id, sessionId: row?.session_id, clientId: row?.client_id } as never,
          now,
        ),
    ],
    ["revoke: the client's chain in the session", (tx) => revokeClientChain(tx, row?.session_id, row?.client_id, now)],
    ["sweeper: refresh_tokens batch", (tx) => deleteGarbageBatch(tx, "refresh_tokens", cutoff, 1000)],
    ["sweeper: sessions batch", (tx) => deleteGarbageBatch(tx, "sessions", cutoff, 1000)],
    ["sweeper: authorization_codes batch", (tx) => deleteGarbageBatch(tx, "authorization_codes", cutoff, 1000)],
  ];
  await db
    .transaction(async (tx) => {
      for (const [text, step] of steps) {
        label = text;
        await step(tx as unknown as Database);
      }
      throw new Error("rollback");
    })
    .catch((error: Error) => {
      if (error.message !== "rollback") throw error;
    });
  await client.end();

  const seen = new Set<string>();
  let sequential = 0;
  for (const [i, { label: text, query, params }] of recorded.entries()) {
    if (seen.has(query)) continue;
    seen.add(query);
    // Hot queries run as prepared statements (generic plan in the end); the sweeper's are sent unprepared (a plan
    // for the actual values each time).
    const mode = text.startsWith("sweeper") ? "force_custom_plan" : "force_generic_plan";
    await sql.unsafe(`set plan_cache_mode = ${mode}`);
    await sql.unsafe(`prepare s${i} as ${query}`);
    const args = params.map((p) => (p instanceof Date ? `'${p.toISOString()}'` : p === null ? "null" : `'${p}'`));
    const plan = await sql.unsafe(`explain execute s${i}${args.length ? `(${args.join(", ")})` : ""}`);
    const lines = plan.map((r) => r["QUERY PLAN"] as string);
    const seq = lines.filter((l) =>
      /Seq Scan on (refresh_tokens|sessions|authorization_codes|users|dpop_bindings)\b/.test(l),
    );
    sequential += seq.length;
    console.log(`\n## ${text}${seq.length ? "   <-- SEQUENTIAL SCAN" : ""}\n${query}\n${lines.join("\n")}`);
  }
  console.log(
    `\n${seen.size} statements; ${sequential} sequential scans of a large table ` +
      `(${ROWS} refresh tokens, 200000 sessions, 100000 codes).`,
  );
  await sql.end();
});
