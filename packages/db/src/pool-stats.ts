import type { PGlite } from "@electric-sql/pglite";
import type postgres from "postgres";

/**
 * Database pool use, counted where work is handed to the driver (postgres.js has no public pool statistics): read by
 * the auth-server's /metrics. Live values, never reset.
 */
export interface PoolStats {
  /** Connections the pool may open (PGlite: 1, one embedded connection). */
  readonly max: number;
  /** Statements handed to the pool and not answered yet, waiting for a connection or running (outside transactions). */
  readonly queriesInFlight: number;
  /** Connections held by a transaction or `reserve()` until it ends or is released. */
  readonly reservedConnections: number;
}

export class PoolCounter implements PoolStats {
  queriesInFlight = 0;
  reservedConnections = 0;
  constructor(readonly max: number) {}

  /** Counts one unit of work from now until `work` settles; returns it unchanged. */
  track<T>(kind: "query" | "reserved", work: Promise<T>): Promise<T> {
    const key = kind === "query" ? "queriesInFlight" : "reservedConnections";
    this[key]++;
    const done = () => {
      this[key]--;
    };
    work.then(done, done);
    return work;
  }
}

/** The parts of a lazy postgres.js query used here (as in deadline.ts): handed to the pool by its first `then`. */
interface LazyQuery {
  handler: (query: LazyQuery) => void;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Sql = postgres.Sql<Record<string, never>>;

/** Counts a lazy query from the moment it is handed to the pool until it is answered (never if it never is). */
function countedQuery<Q>(query: Q, counter: PoolCounter): Q {
  const q = query as unknown as LazyQuery;
  const { handler, resolve, reject } = q;
  let counted = false;
  const settle = () => {
    if (counted) counter.queriesInFlight--;
    counted = false;
  };
  q.handler = (self) => {
    counted = true;
    counter.queriesInFlight++;
    return handler.call(self, self);
  };
  q.resolve = (value) => {
    settle();
    resolve(value);
  };
  q.reject = (error) => {
    settle();
    reject(error);
  };
  return query;
}

/** The postgres.js client with its statements (`unsafe`, as Drizzle sends them), transactions and reservations counted. */
export function countingPostgres(client: Sql, counter: PoolCounter): Sql {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === "unsafe") {
        return (...args: Parameters<Sql["unsafe"]>) => countedQuery(target.unsafe(...args), counter);
      }
      if (property === "begin") {
        return (...args: Parameters<Sql["begin"]>) =>
          counter.track("reserved", (target.begin as (...a: unknown[]) => Promise<unknown>)(...args));
      }
      if (property === "reserve") {
        return async () => {
          const reserved = await target.reserve();
          counter.reservedConnections++;
          let released = false;
          return new Proxy(reserved, {
            get(inner, name, innerReceiver) {
              const member = Reflect.get(inner, name, innerReceiver);
              if (name !== "release") return member;
              return () => {
                if (!released) counter.reservedConnections--;
                released = true;
                return inner.release();
              };
            },
          });
        };
      }
      return value;
    },
  });
}

/** The PGlite client with its statements and transactions counted (its one connection runs one at a time). */
export function countingPglite(client: PGlite, counter: PoolCounter): PGlite {
  return new Proxy(client, {
    get(target, property) {
      // The instance as `this` (not the proxy): PGlite's getters read private fields.
      const value = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      if (property === "query" || property === "exec") {
        return (...args: unknown[]) => counter.track("query", value.apply(target, args) as Promise<unknown>);
      }
      if (property === "transaction") {
        return (...args: unknown[]) => counter.track("reserved", value.apply(target, args) as Promise<unknown>);
      }
      return value.bind(target);
    },
  });
}
