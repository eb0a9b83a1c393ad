import type { Executor } from "@tessera/db";
import { findRefreshTokenForRotation, type NewRefreshToken, type RefreshTokenForRotation } from "./refresh-tokens.ts";

/**
 * A plain refresh in two statements and no transaction: one read (the token, its owners and its chain's DPoP binding:
 * findRefreshTokenForRotation), then one write that is atomic by itself. `decide` gets the read and the binding's key
 * thumbprint (null: not bound), and answers the rotation's values, or null when the request is anything but a plain
 * rotation (unknown, retired, revoked, refused...): then nothing is written and the caller takes the general path.
 *
 * The write re-checks, under the same row locks as every other writer and in the same order (the session, then its
 * tokens: as ending a session and the general path do, so the two cannot deadlock), what may have changed since the
 * read:
 *   1. slide the session, only while it has not ended (this takes the session's row lock, and waits for a logout
 *      that holds it; READ COMMITTED then re-reads the row as that logout left it);
 *   2. retire the presented token, only if step 1 matched and the token is neither retired nor revoked (a concurrent
 *      rotation of it that committed first makes this match nothing: exactly one successor);
 *   3. drop the generation before it (reuse detection needs only the newest retired one), only if step 2 matched;
 *   4. insert the successor, only if step 2 matched.
 * Steps 3 and 4 read step 2's rows, and step 2 reads step 1's, so PostgreSQL runs them in this order. When step 2
 * matches nothing, `rotated` is false and nothing but the session's last-seen time was written: the caller takes the
 * general path, which reads the token as it is now. A logout that takes the session's lock after this statement
 * committed sees the successor (its token update is a later statement) and revokes it with the rest.
 *
 * Inside a request deadline (packages/db deadline.ts), a write that would be sent after the deadline is refused unsent:
 * a decision that took too long never rotates late. PostgreSQL (postgres.js) only: answers null on PGlite, whose
 * single connection takes the general path.
 */
export async function rotateInTwoStatements(
  db: Executor,
  tokenHash: string,
  chainId: string | null,
  decide: (
    found: RefreshTokenForRotation | null,
    boundJkt: string | null,
  ) => (NewRefreshToken & { idleExpiresAt: Date }) | null,
): Promise<{ found: RefreshTokenForRotation; successorId: string } | { rotated: false } | null> {
  const client = (db as unknown as { session: { client: { unsafe?: Unsafe } } }).session.client;
  if (typeof client.unsafe !== "function") return null;
  const read = await findRefreshTokenForRotation(db, tokenHash, chainId);
  const rotation = decide(read, read?.boundJkt ?? null);
  if (!read || !rotation) return { rotated: false };
  const { boundJkt: _, ...found } = read;
  const now = rotation.createdAt.toISOString();
  const [row] = await client.unsafe(
    ROTATE,
    [
      now,
      rotation.idleExpiresAt.toISOString(),
      rotation.sessionId,
      found.token.id,
      found.token.parentId,
      rotation.tokenHash,
      rotation.clientId,
      rotation.userId,
      rotation.chainId,
      rotation.authorizationCodeId,
      rotation.scope,
    ],
    { prepare: true },
  );
  const successorId = row?.successor_id;
  return typeof successorId === "string" ? { found, successorId } : { rotated: false };
}

/** postgres.js's `unsafe` (only the call used here): the statement is prepared once per connection. */
type Unsafe = (query: string, params: unknown[], options: { prepare: boolean }) => Promise<Record<string, unknown>[]>;

/** The write, steps 1 to 4 above. */
const ROTATE = `with slid as (
    update sessions set last_seen_at = $1, idle_expires_at = $2
    where id = $3 and revoked_at is null
    returning id),
  retired as (
    update refresh_tokens set rotated_at = $1
    where id = $4 and rotated_at is null and revoked_at is null and exists (select 1 from slid)
    returning id),
  pruned as (
    delete from refresh_tokens
    where id = $5 and chain_id is not null and rotated_at is not null and exists (select 1 from retired)),
  inserted as (
    insert into refresh_tokens
      (token_hash, session_id, client_id, user_id, parent_id, chain_id, authorization_code_id, scope, created_at)
    select $6, $3, $7, $8, $4, $9, $10, $11, $1 from retired
    returning id)
  select (select id from inserted) as successor_id`;
