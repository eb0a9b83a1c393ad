import type { Executor } from "@tessera/db";

/**
 * Prepared statements for the hot queries, built once per driver and run on whichever handle a caller has.
 *
 * A Drizzle query built on every call costs its SQL generation each time, and an unnamed statement costs postgres.js
 * two round trips (Parse/Describe, then Bind/Execute). `.prepare(name)` with `sql.placeholder()` values fixes both:
 * the SQL text is generated once, and postgres.js keeps one server-side prepared statement per connection for it, so
 * each later execution is a single Bind/Execute round trip. PGlite runs the same prepared query in-process.
 *
 * Drizzle binds a prepared query to the client of the handle it was built on, while most hot queries run inside a
 * transaction (a reserved connection). Both drivers' prepared queries read the connection from their `client`
 * property at execution, so `prepared()` hands back a view of the one built query whose `client` is the given
 * handle's: nothing is rebuilt, and the statement runs on the transaction's connection. (Behind a pooler in
 * transaction mode, named statements need PgBouncer 1.21+ with max_prepared_statements set.)
 */

interface Bound {
  client: unknown;
}

/** A database or transaction handle's driver session (Drizzle keeps it on `session`; both drivers have `client`). */
function sessionOf(db: Executor): { client: unknown; constructor: object } {
  return (db as unknown as { session: { client: unknown; constructor: object } }).session;
}

/** Built queries by driver session class (PostgreSQL and PGlite build different prepared-query classes), then name. */
const built = new WeakMap<object, Map<string, Bound>>();

/**
 * The prepared query `name`, built by `build` the first time this driver needs it, bound to `db`'s connection. `build`
 * must only use `sql.placeholder()` for values (never a value captured from the caller): it runs once.
 */
export function prepared<Q>(db: Executor, name: string, build: (db: Executor) => Q): Q {
  const session = sessionOf(db);
  let byName = built.get(session.constructor);
  if (!byName) {
    byName = new Map();
    built.set(session.constructor, byName);
  }
  let query = byName.get(name);
  if (!query) {
    query = build(db) as unknown as Bound;
    byName.set(name, query);
  }
  if (query.client === session.client) return query as unknown as Q;
  return Object.create(query, { client: { value: session.client } }) as Q;
}
