import { clients, type Executor, refreshTokens, requestDeadlineInDatabaseTime, sessions, users } from "@tessera/db";
import { getTableColumns, type Table } from "drizzle-orm";
import { CasingCache } from "drizzle-orm/casing";
import type { RefreshTokenForRotation } from "./refresh-tokens.ts";

/** What a plain rotation needs besides the presented token's hash: known before anything is read. */
export interface PlainRotation {
  /** SHA-256 of the presented refresh token. */
  tokenHash: string;
  /** The chain id the presented token's text names (tokens.ts chainIdOf): the stored token must carry the same. */
  chainId: string;
  /** The authenticated client's row id: the token must have been issued to it. */
  clientId: string;
  /** Thumbprint of the request's DPoP key (null: no proof). A chain bound to another key (or any key, without a
   * proof) is not plain. */
  dpopJkt: string | null;
  /** SHA-256 of the successor's value (generated before the statement; handed out only if it is stored). */
  successorHash: string;
  now: Date;
  /** SESSION_IDLE_TTL_SECONDS: the session's idle deadline moves to now + this, never past its absolute expiry. */
  idleTtlSeconds: number;
  /** The session is written only when its idle deadline would move by at least this much (sessions.ts idleSlideStepSeconds). */
  slideStepSeconds: number;
}

/**
 * A plain refresh in ONE statement, no transaction and one round trip: the token is read with its owners, and rotated
 * in the same statement only if every rule of a plain rotation holds for it. `plain` in the statement is that list of
 * rules, the same as the refresh grant's `check` (grants.ts), with the binding rule of checkDpopBinding:
 *   the stored token carries the chain id its text names and belongs to the authenticated client; it is neither
 *   retired nor revoked; its client is not disabled; its user is neither disabled nor deleted; its session has not
 *   ended, expired or gone idle at `now`; its chain is not bound to another DPoP key than the proof's (or to any key,
 *   when there is no proof).
 * The caller asks only when the request names no `scope` (narrowing is checked in JavaScript, before any write).
 *
 * The writes re-check, under the same row locks as every other writer and in the same order (the session, then its
 * tokens: as ending a session and the general path do, so the two cannot deadlock), what a concurrent request may
 * have changed since the statement's snapshot:
 *   1. lock the session's row, if the read was plain, only if the session still has not ended or expired (READ
 *      COMMITTED re-checks the row as a logout that held the lock left it), and go on only if the request's deadline
 *      has not passed (judged after the lock was taken: see Deadlines). The lock is FOR SHARE when the idle deadline
 *      need not move (sessions.ts dueSlide: it would move by less than idleSlideStepSeconds), so the refreshes of one
 *      session's many apps do not wait for each other, while a logout (an UPDATE of the row) waits for them and they
 *      for it. When the slide is due, the lock is FOR NO KEY UPDATE, taken as such (a shared lock upgraded by two
 *      refreshes at once would deadlock), and the session is slid if, on the row as locked, it is still due;
 *   2. retire the presented token, only if step 1 matched and the token is neither retired nor revoked (a concurrent
 *      rotation of it that committed first makes this match nothing: exactly one successor);
 *   3. drop the generation before it (reuse detection needs only the newest retired one), only if step 2 matched;
 *   4. insert the successor, only if step 2 matched.
 * Steps 3 and 4 read step 2's rows, step 2 reads step 1's, and step 1 reads the snapshot's: PostgreSQL runs them in
 * this order. A logout that takes the session's lock after this statement committed sees the successor and revokes
 * it with the rest.
 *
 * Answers the token as read (null: no such hash) and the successor's id when this statement stored it (null: nothing
 * but possibly the session's last-seen time was written, and the caller takes the general path, which reads the token
 * again under the session's lock and gives the precise answer).
 *
 * Deadlines. Inside a request deadline (packages/db deadline.ts) a statement issued after the deadline is refused
 * unsent. One already written to the socket is out of this process's hands: with the network black-holed it reaches
 * the server when the network returns, long after the request answered 503, and with no transaction there is no
 * COMMIT to withhold. So the statement carries the deadline in the server's clock (packages/db db-clock.ts) and its
 * writes (steps 1 and 2, and so 3 and 4) require `clock_timestamp()` not past it, read after the locks they wait for
 * were taken: a statement that arrives late, or waits past the deadline for a lock, writes nothing. While the offset to the server's clock is not known yet this
 * answers undefined, as it does on PGlite (postgres.js only), and the caller takes the general path.
 */
export async function rotateInOneStatement(
  db: Executor,
  rotation: PlainRotation,
): Promise<{ found: RefreshTokenForRotation | null; successorId: string | null } | undefined> {
  const client = (db as unknown as { session: { client: { unsafe?: Unsafe } } }).session.client;
  if (typeof client.unsafe !== "function") return undefined;
  // The request's deadline in the server's clock: the statement carries it and writes nothing once it has passed.
  const notAfter = requestDeadlineInDatabaseTime(client);
  if (notAfter === undefined) return undefined;
  const [row] = await client.unsafe(
    ROTATE,
    [
      rotation.tokenHash,
      rotation.chainId,
      rotation.clientId,
      rotation.now.toISOString(),
      rotation.dpopJkt,
      rotation.idleTtlSeconds,
      rotation.successorHash,
      notAfter,
      rotation.slideStepSeconds,
    ],
    { prepare: true },
  );
  if (!row) return { found: null, successorId: null };
  const successorId = row.successor_id;
  return {
    found: {
      token: mapped(row, TOKEN) as RefreshTokenForRotation["token"],
      session: mapped(row, SESSION) as RefreshTokenForRotation["session"],
      user: mapped(row, USER) as RefreshTokenForRotation["user"],
      client: mapped(row, CLIENT) as RefreshTokenForRotation["client"],
    },
    successorId: typeof successorId === "string" ? successorId : null,
  };
}

/** postgres.js's `unsafe` (only the call used here): the statement is prepared once per connection. */
type Unsafe = (query: string, params: unknown[], options: { prepare: boolean }) => Promise<Record<string, unknown>[]>;

/**
 * The columns of a table as the statement selects them: every column of the Drizzle table (so the rows are the same
 * shape as a Drizzle select's), each under an alias of its own, and mapped back the way Drizzle maps them.
 */
interface Selected {
  alias: string;
  columns: { key: string; name: string; as: string; fromDriver: (value: unknown) => unknown }[];
}

const casing = new CasingCache("snake_case");

function selected(alias: string, table: Table, only?: readonly string[]): Selected {
  const columns = Object.entries(getTableColumns(table))
    .filter(([key]) => !only || only.includes(key))
    .map(([key, column]) => {
      const name = casing.getColumnCasing(column);
      return { key, name, as: `${alias}_${name}`, fromDriver: (value: unknown) => column.mapFromDriverValue(value) };
    });
  return { alias, columns };
}

function mapped(row: Record<string, unknown>, part: Selected): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const column of part.columns) {
    const value = row[column.as];
    out[column.key] = value === null || value === undefined ? null : column.fromDriver(value);
  }
  return out;
}

const TOKEN = selected("t", refreshTokens);
const SESSION = selected("s", sessions);
const USER = selected("u", users);
const CLIENT = selected("c", clients, ["disabledAt"]);

const selectList = [TOKEN, SESSION, USER, CLIENT]
  .flatMap((part) => part.columns.map((c) => `${part.alias}."${c.name}" as "${c.as}"`))
  .join(", ");

/**
 * $1 token hash, $2 chain id, $3 client row id, $4 now, $5 DPoP key thumbprint (or null), $6 idle TTL in seconds,
 * $7 successor's hash, $8 the request's deadline in the server's clock (null: none), $9 the slide step in seconds.
 * `found` is referenced more than once, so PostgreSQL materializes it: the token is read once.
 */
const ROTATE = `with found as (
    select ${selectList},
      (t.chain_id = $2::uuid and t.client_id = $3::uuid and t.rotated_at is null and t.revoked_at is null
        and c.disabled_at is null and u.disabled_at is null and u.deleted_at is null
        and s.revoked_at is null and s.expires_at > $4::timestamptz and s.idle_expires_at > $4::timestamptz
        and not exists (select 1 from dpop_bindings b
                        where b.chain_id = $2::uuid and b.jkt is distinct from $5::text)) as plain,
      least($4::timestamptz + $6::int * interval '1 second', s.expires_at)
        >= s.idle_expires_at + $9::int * interval '1 second' as slide_due
    from refresh_tokens t
      join sessions s on s.id = t.session_id
      join users u on u.id = t.user_id
      join clients c on c.id = t.client_id
    where t.token_hash = $1::text
    limit 1),
  slide_locked as (
    select id from sessions
    where id = (select t_session_id from found where plain and slide_due)
      and revoked_at is null and expires_at > $4::timestamptz and idle_expires_at > $4::timestamptz
    for no key update),
  share_locked as (
    select id from sessions
    where id = (select t_session_id from found where plain and not slide_due)
      and revoked_at is null and expires_at > $4::timestamptz and idle_expires_at > $4::timestamptz
    for share),
  live as (
    select id from (select id from slide_locked union all select id from share_locked) l
    where $8::timestamptz is null or clock_timestamp() <= $8::timestamptz),
  slid as (
    update sessions
    set last_seen_at = $4::timestamptz,
        idle_expires_at = least($4::timestamptz + $6::int * interval '1 second', expires_at)
    where id = (select id from slide_locked) and exists (select 1 from live)
      and least($4::timestamptz + $6::int * interval '1 second', expires_at)
        >= idle_expires_at + $9::int * interval '1 second'
    returning id),
  retired as (
    update refresh_tokens set rotated_at = $4::timestamptz
    where id = (select t_id from found) and rotated_at is null and revoked_at is null and exists (select 1 from live)
      and ($8::timestamptz is null or clock_timestamp() <= $8::timestamptz)
    returning id),
  pruned as (
    delete from refresh_tokens
    where id = (select t_parent_id from found) and chain_id is not null and rotated_at is not null
      and exists (select 1 from retired)),
  inserted as (
    insert into refresh_tokens
      (token_hash, session_id, client_id, user_id, parent_id, chain_id, authorization_code_id, scope, created_at)
    select $7::text, t_session_id, t_client_id, t_user_id, t_id, $2::uuid, t_authorization_code_id, t_scope,
      $4::timestamptz
    from found where exists (select 1 from retired)
    returning id)
  select found.*, (select id from inserted) as successor_id from found`;
