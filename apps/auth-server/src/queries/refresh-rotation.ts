import { type Executor, outsideDeadline } from "@tessera/db";
import { findDpopBinding } from "./dpop.ts";
import { lockRefreshTokenForRotation, type NewRefreshToken, type RefreshTokenForRotation } from "./refresh-tokens.ts";

/** A postgres.js connection reserved from the pool (only the calls used here). */
interface ReservedConnection {
  unsafe(query: string, params?: unknown[], options?: { prepare?: boolean }): PendingQuery;
  release(): void;
}
/** postgres.js queries are lazy: sent when awaited, or at once with execute() (which keeps the order on the wire). */
type PendingQuery = Promise<Record<string, unknown>[]> & { execute(): PendingQuery };

/**
 * On PostgreSQL (postgres.js), a refresh in two round trips instead of four: BEGIN is sent with the locking read (and
 * the read of the chain's DPoP binding, when `chainId` is given), and the writes go as one statement sent with COMMIT.
 * `decide` gets the locked read (as lockRefreshTokenForRotation returns it) and the binding's key thumbprint (null: not
 * bound), and answers the rotation's values, or null when the request is anything but a plain rotation (unknown, retired,
 * revoked, refused...): then the transaction is rolled back and the caller takes the general path. Every write is
 * conditional on the retirement (the conditional UPDATE), so COMMIT can be sent without waiting: when the retirement
 * matches nothing (a concurrent rotation committed while this one waited for the session lock), nothing was written
 * and `rotated` is false. Answers null when the driver is not postgres.js (PGlite): use the general path.
 */
export async function rotateInTwoRoundTrips(
  db: Executor,
  tokenHash: string,
  chainId: string | null,
  decide: (
    found: RefreshTokenForRotation | null,
    boundJkt: string | null,
  ) => (NewRefreshToken & { idleExpiresAt: Date }) | null,
): Promise<{ found: RefreshTokenForRotation; successorId: string } | { rotated: false } | null> {
  const session = (db as unknown as { session: { client: { reserve?: () => Promise<ReservedConnection> } } }).session;
  if (typeof session.client.reserve !== "function") return null;
  const connection = await session.client.reserve();
  // The prepared queries of this module, run on the reserved connection (see prepared.ts).
  const onConnection = Object.create(db, {
    session: { value: Object.create(session, { client: { value: connection } }) },
  }) as Executor;
  let open = false;
  try {
    const begin = connection.unsafe("begin").execute();
    open = true;
    const [, found, boundJkt] = await Promise.all([
      begin,
      lockRefreshTokenForRotation(onConnection, tokenHash),
      chainId ? findDpopBinding(onConnection, chainId) : null,
    ]);
    const rotation = decide(found, boundJkt);
    if (!found || !rotation) {
      // Outside the request's deadline: a late ROLLBACK must still be sent, never skipped (see outsideDeadline).
      await outsideDeadline(() => connection.unsafe("rollback"));
      open = false;
      return { rotated: false };
    }
    const now = rotation.createdAt.toISOString();
    const write = connection
      .unsafe(
        `with retired as (
         update refresh_tokens set rotated_at = $1
         where id = $2 and rotated_at is null and revoked_at is null
         returning id),
       pruned as (
         delete from refresh_tokens
         where id = $3 and chain_id is not null and rotated_at is not null and exists (select 1 from retired)),
       slid as (
         update sessions set last_seen_at = $1, idle_expires_at = $4
         where id = $5 and exists (select 1 from retired)),
       inserted as (
         insert into refresh_tokens
           (token_hash, session_id, client_id, user_id, parent_id, chain_id, authorization_code_id, scope, created_at)
         select $6, $5, $7, $8, $2, $9, $10, $11, $1 from retired
         returning id)
       select (select id from inserted) as successor_id`,
        [
          now,
          found.token.id,
          found.token.parentId,
          rotation.idleExpiresAt.toISOString(),
          rotation.sessionId,
          rotation.tokenHash,
          rotation.clientId,
          rotation.userId,
          rotation.chainId,
          rotation.authorizationCodeId,
          rotation.scope,
        ],
        { prepare: true },
      )
      .execute();
    const commit = connection.unsafe("commit").execute();
    const [[row]] = await Promise.all([write, commit]);
    open = false;
    const successorId = row?.successor_id;
    return typeof successorId === "string" ? { found, successorId } : { rotated: false };
  } catch (error) {
    // Past the deadline the writes and COMMIT were refused unsent; the ROLLBACK goes regardless, so the connection
    // never returns to the pool inside this transaction (holding the session's row lock).
    if (open) await outsideDeadline(() => connection.unsafe("rollback")).catch(() => {});
    throw error;
  } finally {
    connection.release();
  }
}
