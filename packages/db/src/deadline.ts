import { AsyncLocalStorage } from "node:async_hooks";
import { performance } from "node:perf_hooks";
import type postgres from "postgres";
import type { DatabaseClock } from "./db-clock.ts";

/**
 * Request deadlines for database work. The HTTP layer runs each request inside `runWithDeadline()`; the PostgreSQL
 * client is wrapped (`withDeadlines()`) so that, inside such a scope:
 * - a statement issued after the deadline is rejected before it reaches the pool (it never queues, never runs late);
 * - a statement still waiting in the pool (no connection, the database unreachable) when the deadline passes is taken
 *   out of the queue and rejected, so it cannot run minutes later when the database comes back;
 * - a transaction gets `SET LOCAL statement_timeout` bounded by the time left, and is rolled back instead of
 *   committed if the deadline passed while its callback ran.
 * Outside any scope (migrations, background jobs, the CLI) nothing changes.
 */

/** The error code of a statement refused or withdrawn because its request's deadline passed. */
export const DEADLINE_EXCEEDED = "DB_DEADLINE_EXCEEDED";

export class DeadlineExceededError extends Error {
  override name = "DeadlineExceededError";
  readonly code = DEADLINE_EXCEEDED;
  constructor(override readonly cause?: unknown) {
    super("The request's deadline passed before the database answered.");
  }
}

interface DeadlineScope {
  /** `performance.now()` value after which no statement may be sent. */
  deadlineAt: number;
}

/** The property under which a client wrapped by `withDeadlines()` answers its database's clock (db-clock.ts). */
export const DATABASE_CLOCK = Symbol.for("tessera.databaseClock");

const storage = new AsyncLocalStorage<DeadlineScope>();

/** Runs `fn` (and everything it starts) with database work allowed until `deadlineAt` (a `performance.now()` value). */
export function runWithDeadline<T>(deadlineAt: number, fn: () => T): T {
  return storage.run({ deadlineAt }, fn);
}

/**
 * Runs `fn` outside any deadline scope. For clean-up that must reach the database even after the deadline, above all
 * the ROLLBACK of a transaction opened by hand on a reserved connection: without it the connection would go back to
 * the pool still inside the transaction, holding its locks, and the next request on it would run inside it.
 */
export function outsideDeadline<T>(fn: () => T): T {
  return storage.exit(fn);
}

/** Milliseconds left before the current deadline, or undefined outside any deadline scope. */
export function deadlineRemainingMs(): number | undefined {
  const scope = storage.getStore();
  return scope ? scope.deadlineAt - performance.now() : undefined;
}

/** The parts of a postgres.js query object this module relies on (stable in 3.4.x, not in its typings). */
interface QueryInternals {
  handler: (query: QueryInternals) => void;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  cancel(): unknown;
  /** True once awaited (handed to the pool). */
  executed: boolean;
  /** Set once a connection has taken the query; null while it waits in a queue. */
  state: unknown;
}

/**
 * Attaches the current deadline to one query. Works on the lazy postgres.js query object before it is awaited:
 * the query is handed to the pool only by its first `then`, through `query.handler`.
 *
 * `withdraw`: whether a query still queued when the deadline passes is taken out of its queue. Only for the pool's
 * queue. A transaction or reserved connection queues its statements in its own list, which postgres.js's cancel()
 * does not know: it marks the query cancelled but leaves it there, and the connection, on reaching it, skips it
 * without sending anything — so no ReadyForQuery ever comes to send the statements queued after it, the ROLLBACK
 * among them. The connection then stays inside its transaction for good, holding the session's row lock, and every
 * later refresh of that session waits on it (seen in test/fault/deadline.test.ts). On such a connection a queued
 * statement waits behind this request's own statements and is sent in order; what the deadline stops there is
 * sending new ones (refused unsent) and committing.
 */
function bound<Q>(query: Q, withdraw: boolean): Q {
  const remaining = deadlineRemainingMs();
  if (remaining === undefined) return query;
  const q = query as unknown as QueryInternals;
  if (remaining <= 0) {
    // Never reaches the pool: no connection is taken and nothing can run later.
    q.handler = (self) => self.reject(new DeadlineExceededError());
    return query;
  }
  if (!withdraw) return query;
  let expired = false;
  const { resolve, reject } = q;
  const timer = setTimeout(() => {
    // Only a query no connection has taken yet is withdrawn (postgres.js removes it from the queue, or marks it so
    // the connection skips it once connected). One already sent is left to statement_timeout / the socket's fate:
    // cancelling it would open a new connection to a database that is probably not there.
    if (!q.executed || q.state !== null) return;
    expired = true;
    try {
      q.cancel();
    } catch {
      // cancel() of a queued query only edits in-memory queues; nothing to do if it fails
    }
  }, remaining);
  timer.unref();
  q.resolve = (value) => {
    clearTimeout(timer);
    resolve(value);
  };
  q.reject = (error) => {
    clearTimeout(timer);
    reject(expired ? new DeadlineExceededError(error) : error);
  };
  return query;
}

type Sql = postgres.Sql<Record<string, never>>;
type TransactionSql = postgres.TransactionSql<Record<string, never>>;

function assertTime(): number | undefined {
  const remaining = deadlineRemainingMs();
  if (remaining !== undefined && remaining <= 0) throw new DeadlineExceededError();
  return remaining;
}

/** Wraps a transaction callback: bounds its statements by the time left and refuses to commit after the deadline. */
function boundTransaction<T>(fn: (sql: TransactionSql) => T | Promise<T>) {
  return async (tx: TransactionSql): Promise<T> => {
    const remaining = assertTime();
    const guarded = withDeadlines(tx, false);
    let setting: Promise<unknown> | undefined;
    if (remaining !== undefined) {
      // SET cannot take a bind parameter; the value is an integer we computed. Sent at once, not awaited first: the
      // connection runs it before the callback's first statement (postgres.js keeps the order on the wire), which
      // saves the transaction a round trip. Should it fail, that statement fails too and the transaction rolls back.
      setting = guarded.unsafe(`set local statement_timeout = ${Math.max(1, Math.ceil(remaining))}`).execute();
      setting.catch(() => {});
    }
    const result = await fn(guarded);
    await setting;
    // Throwing here makes postgres.js send ROLLBACK instead of COMMIT: late work is never committed.
    assertTime();
    return result;
  };
}

/**
 * `sql.reserve()` bound to the deadline: a pool with no connection to give (the database unreachable) makes reserve()
 * wait, and a connection handed out after the deadline would run the caller's statements late. So the wait ends at
 * the deadline (a connection that arrives afterwards goes straight back to the pool, unused), and the reserved
 * connection's own statements are bound like every other.
 */
async function reserveBounded(target: Sql): Promise<postgres.ReservedSql<Record<string, never>>> {
  const remaining = assertTime();
  const pending = target.reserve();
  if (remaining === undefined) return pending;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError()), remaining);
    timer.unref();
  });
  try {
    const connection = await Promise.race([pending, expired]);
    return withDeadlines(connection, false);
  } catch (error) {
    pending.then(
      (late) => late.release(),
      () => {},
    );
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The postgres.js client (or a transaction's, or a reserved connection's) with every statement bound to the current
 * request deadline. `pool`: true for the pool's client (queued statements are withdrawn at the deadline), false for
 * a transaction or reserved connection (see `bound`).
 */
export function withDeadlines<S extends Sql | TransactionSql | postgres.ReservedSql<Record<string, never>>>(
  sql: S,
  pool = true,
  clock?: DatabaseClock,
): S {
  return new Proxy(sql, {
    get(target, property, receiver) {
      if (property === DATABASE_CLOCK) return clock;
      const value = Reflect.get(target, property, receiver);
      if (property === "unsafe") {
        return (...args: Parameters<Sql["unsafe"]>) => bound(target.unsafe(...args), pool);
      }
      if (property === "begin") {
        return (...args: unknown[]) => {
          const fn = args.pop() as (sql: TransactionSql) => unknown;
          try {
            assertTime();
          } catch (error) {
            return Promise.reject(error);
          }
          return (target as Sql).begin(...(args as [string]), boundTransaction(fn));
        };
      }
      if (property === "reserve") {
        return () => reserveBounded(target as Sql);
      }
      if (property === "savepoint") {
        return (...args: unknown[]) => {
          const fn = args.pop() as (sql: TransactionSql) => unknown;
          try {
            assertTime();
          } catch (error) {
            return Promise.reject(error);
          }
          return (target as TransactionSql).savepoint(
            ...(args as [string]),
            async (tx: TransactionSql) => await fn(withDeadlines(tx, false)),
          );
        };
      }
      return value;
    },
  });
}
