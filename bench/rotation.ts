/**
 * pnpm bench rotation: what PostgreSQL spends on the refresh grant's one-statement rotation (refresh-rotation.ts),
 * without HTTP, signing or the load generator: CPU of the database's processes (from /proc, so it must run on the
 * PostgreSQL server's host) and WAL bytes per rotation, over 16 chains of one session — rotated one at a time on one
 * connection (the backend's CPU alone) and all at once on 16 connections (every PostgreSQL process, as under load).
 *
 * Variants, each in a throwaway database migrated as the server would: `current` (the schema as migrated),
 * `with-dropped-indexes` (the two indexes migration 0006 dropped, recreated), `without-owner-fks` (no foreign keys from
 * refresh_tokens to clients and users; `without-client-fk`, `without-user-fk` one of them). BENCH_DATABASE_URL as in bench/oauth.mjs; ROTATIONS per measurement (default
 * 10000); VARIANTS to pick (comma-separated). Each variant runs twice, alternating, since the machine is shared.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { rotateInOneStatement } from "../apps/auth-server/src/queries/refresh-rotation.ts";
import type { Database } from "../packages/db/src/index.ts";
import { postgres, withThrowawayDatabase } from "./throwaway-database.ts";

const ROTATIONS = Number(process.env.ROTATIONS ?? 10_000);
const VARIANTS = (process.env.VARIANTS ?? "current,with-dropped-indexes,without-owner-fks").split(",");
const CHAINS = 16;
const sha256 = (value: Buffer) => createHash("sha256").update(value).digest("hex");

/** Clock ticks to milliseconds: Linux's USER_HZ is 100. */
function processCpuMs(pid: string): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function allPostgresCpuMs(): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "postgres") continue;
      total += processCpuMs(pid);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return total;
}

async function measure(variant: string): Promise<string> {
  return withThrowawayDatabase("tessera_rotation", async (url) => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    const pool = postgres(url, { max: CHAINS, onnotice: () => {} });
    if (variant === "with-dropped-indexes") {
      await sql.unsafe("create index refresh_tokens_parent_id_idx on refresh_tokens (parent_id)");
      await sql.unsafe("create index refresh_tokens_code_id_idx on refresh_tokens (authorization_code_id)");
    } else if (variant === "without-owner-fks") {
      await sql.unsafe("alter table refresh_tokens drop constraint refresh_tokens_client_id_clients_id_fk");
      await sql.unsafe("alter table refresh_tokens drop constraint refresh_tokens_user_id_users_id_fk");
    } else if (variant === "without-client-fk") {
      await sql.unsafe("alter table refresh_tokens drop constraint refresh_tokens_client_id_clients_id_fk");
    } else if (variant === "without-user-fk") {
      await sql.unsafe("alter table refresh_tokens drop constraint refresh_tokens_user_id_users_id_fk");
    } else if (variant !== "current") {
      throw new Error(`unknown variant ${variant}`);
    }
    const userId = randomUUID();
    const clientId = randomUUID();
    const sessionId = randomUUID();
    await sql`insert into users (id, email, created_at, updated_at) values (${userId}, 'bench@example.com', now(), now())`;
    await sql`insert into clients (id, client_id, name, client_secret_hash) values (${clientId}, 'bench', 'Bench', 'x')`;
    await sql`insert into sessions (id, token_hash, user_id, authenticated_at, last_seen_at, expires_at, idle_expires_at)
      values (${sessionId}, 'bench', ${userId}, now(), now(), now() + interval '30 days', now() + interval '29 days')`;
    const chains: { chainId: string; hash: string }[] = [];
    for (let i = 0; i < CHAINS; i++) {
      const chain = { chainId: randomUUID(), hash: sha256(randomBytes(32)) };
      await sql`insert into refresh_tokens (token_hash, session_id, client_id, user_id, chain_id, scope)
        values (${chain.hash}, ${sessionId}, ${clientId}, ${userId}, ${chain.chainId}, 'openid offline_access')`;
      chains.push(chain);
    }
    // The statement is built only with a known offset to the server's clock; no deadline here.
    const withClock = (client: object) => {
      Object.assign(client, { [Symbol.for("tessera.databaseClock")]: { requestDeadline: () => null } });
      return { session: { client } } as unknown as Database;
    };
    const one = withClock(sql);
    const many = withClock(pool);
    const rotate = async (db: Database, chain: { chainId: string; hash: string }) => {
      const successorHash = sha256(randomBytes(32));
      const result = await rotateInOneStatement(db, {
        tokenHash: chain.hash,
        chainId: chain.chainId,
        clientId,
        dpopJkt: null,
        successorHash,
        now: new Date(),
        idleTtlSeconds: 29 * 86400,
        slideStepSeconds: 60,
      });
      if (!result?.successorId) throw new Error("the rotation did not rotate");
      chain.hash = successorHash;
    };
    const serial = async (n: number) => {
      for (let i = 0; i < n; i++) await rotate(one, chains[i % CHAINS] as (typeof chains)[number]);
    };
    const concurrent = async (n: number) => {
      await Promise.all(
        chains.map(async (chain) => {
          for (let i = 0; i < n / CHAINS; i++) await rotate(many, chain);
        }),
      );
    };
    const [{ pid }] = (await sql`select pg_backend_pid()::text as pid`) as unknown as [{ pid: string }];
    const wal = async () => {
      const [row] = (await sql`select pg_current_wal_lsn()::text as lsn`) as unknown as [{ lsn: string }];
      return row.lsn;
    };
    const walSince = async (from: string) => {
      const [row] =
        (await sql`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${from}::pg_lsn)::float8 as bytes`) as unknown as [
          { bytes: number },
        ];
      return row.bytes;
    };

    await serial(1000);
    let lsn = await wal();
    let cpu = processCpuMs(pid);
    await serial(ROTATIONS);
    const serialCpu = (processCpuMs(pid) - cpu) / ROTATIONS;
    const serialWal = (await walSince(lsn)) / ROTATIONS;

    await concurrent(1000);
    lsn = await wal();
    cpu = allPostgresCpuMs();
    await concurrent(ROTATIONS);
    const concurrentCpu = (allPostgresCpuMs() - cpu) / ROTATIONS;
    const concurrentWal = (await walSince(lsn)) / ROTATIONS;
    await sql.end();
    await pool.end();
    return (
      `| ${variant} | ${(serialCpu * 1000).toFixed(0)} µs | ${serialWal.toFixed(0)} B | ` +
      `${(concurrentCpu * 1000).toFixed(0)} µs | ${concurrentWal.toFixed(0)} B |`
    );
  });
}

const rows: string[] = [];
for (let pass = 0; pass < 2; pass++) {
  for (const variant of VARIANTS) {
    const row = await measure(variant);
    console.log(row);
    rows.push(row);
  }
}
console.log(
  `\nOne-statement rotation, ${ROTATIONS} rotations per measurement, 16 chains of one session\n` +
    "| variant | backend CPU, one connection | WAL | all PostgreSQL CPU, 16 connections | WAL |\n|---|---|---|---|---|\n" +
    rows.join("\n"),
);
