import type { PoolStats } from "@tessera/db";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { CoreContext } from "../context.ts";
import { countActiveSessions } from "../queries/metrics.ts";

/**
 * Prometheus metrics (issue #17). One process-wide registry for what the process does (requests, sign-ins, refreshes,
 * event-loop lag: counted where it happens, whichever app instance in the process saw it) and one registry per app
 * for what is read from the database on scrape (active sessions, back-channel queue), cached a few seconds so a scrape
 * storm cannot become a query storm. Sign-ins and their failures are counted by the sign-in code once the work is
 * committed (a rolled-back sign-in is none), reuse detections from `audit()`, refreshes from the refresh grant. Pool use
 * is read from the database handle's own counters (@tessera/db `PoolStats`).
 */
export const processRegistry = new Registry();

const PREFIX = "tessera_";

const requestDuration = new Histogram({
  name: `${PREFIX}http_request_duration_seconds`,
  help: "HTTP requests by method, route template and status, with their latency (the _count is the request count).",
  labelNames: ["method", "route", "status"] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [processRegistry],
});

const signIns = new Counter({
  name: `${PREFIX}sign_ins_total`,
  help: "Successful sign-ins by method (password, password_otp, federation, other).",
  labelNames: ["method"] as const,
  registers: [processRegistry],
});

const signInFailures = new Counter({
  name: `${PREFIX}sign_in_failures_total`,
  help: "Refused sign-ins by method and reason (an error code of the catalog).",
  labelNames: ["method", "reason"] as const,
  registers: [processRegistry],
});

const refreshes = new Counter({
  name: `${PREFIX}token_refreshes_total`,
  help: "Refresh-token grants answered with new tokens.",
  registers: [processRegistry],
});

const reuseDetections = new Counter({
  name: `${PREFIX}refresh_token_reuse_detected_total`,
  help: "Refresh tokens presented again after rotation (the session was ended).",
  registers: [processRegistry],
});

let defaultsOn = false;
/** Process metrics (CPU, memory, GC, event-loop lag) from prom-client; started once, when metrics are enabled. */
export function enableDefaultMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: processRegistry, prefix: PREFIX });
}

/** Children of the request histogram by "method status route": one Map lookup per request instead of label hashing. */
const requestChildren = new Map<string, { observe(value: number): void }>();
const MAX_CHILDREN = 5000;

/** Records one answered request. `route` is the route template (`/admin/api/v1/users/:id`), never the raw URL. */
export function observeRequest(method: string, route: string, status: number, seconds: number): void {
  const key = `${method} ${status} ${route}`;
  let child = requestChildren.get(key);
  if (!child) {
    // Route templates and methods are finite; the cap only guards against a bug feeding raw URLs in.
    if (requestChildren.size >= MAX_CHILDREN) return;
    child = requestDuration.labels(method, route, String(status));
    requestChildren.set(key, child);
  }
  child.observe(seconds);
}

const REASON = /^[A-Za-z_]{1,48}$/;

/** The sign-in method of an audit event's `amr` (bounded label values). */
function methodOf(amr: unknown): string {
  if (!Array.isArray(amr)) return "other";
  if (amr.includes("fed")) return "federation";
  if (amr.includes("otp")) return "password_otp";
  if (amr.includes("pwd")) return "password";
  return "other";
}

/** A sign-in that committed (call after its transaction, never inside it), by its `amr`. */
export function countSignIn(amr: readonly string[]): void {
  signIns.inc({ method: methodOf(amr) });
}

/** A refused sign-in, once its audit row is written; `reason` is a catalog error code. */
export function countSignInFailure(method: "password" | "federation", reason: unknown): void {
  signInFailures.inc({ method, reason: typeof reason === "string" && REASON.test(reason) ? reason : "other" });
}

/** Counts the audit events that are metrics too. Called by `audit()` for every event; cheap for all others. */
export function countAuditEvent(event: string): void {
  if (event === "token.reuse_detected") reuseDetections.inc();
}

/** Counts a refresh-token grant that issued new tokens. */
export function countRefresh(): void {
  refreshes.inc();
}

/** Database-read gauges of one app, refreshed at most every `cacheMs` however often Prometheus scrapes. */
export function appRegistry(ctx: CoreContext, cacheMs = 5000, pool?: PoolStats): Registry {
  const registry = new Registry();
  if (pool) {
    new Gauge({
      name: `${PREFIX}db_pool_max_connections`,
      help: "Connections the database pool may open (DB_MAX_CONNECTIONS; 1 for embedded PGlite).",
      registers: [registry],
      collect() {
        this.set(pool.max);
      },
    });
    new Gauge({
      name: `${PREFIX}db_queries_in_flight`,
      help: "Statements handed to the database pool and not answered yet (waiting for a connection or running).",
      registers: [registry],
      collect() {
        this.set(pool.queriesInFlight);
      },
    });
    new Gauge({
      name: `${PREFIX}db_reserved_connections`,
      help: "Connections held by a transaction (or reserved) until it commits, rolls back or is released.",
      registers: [registry],
      collect() {
        this.set(pool.reservedConnections);
      },
    });
  }
  let cached: { at: number; value: Awaited<ReturnType<typeof countActiveSessions>> } | undefined;
  let pending: Promise<Awaited<ReturnType<typeof countActiveSessions>>> | undefined;
  const read = async () => {
    const now = Date.now();
    if (cached && now - cached.at < cacheMs) return cached.value;
    // Concurrent scrapes share one query.
    pending ??= countActiveSessions(ctx.db, ctx.clock.now()).finally(() => {
      pending = undefined;
    });
    const value = await pending;
    cached = { at: now, value };
    return value;
  };
  new Gauge({
    name: `${PREFIX}active_sessions`,
    help: "Browser sessions not ended and not expired (read on scrape, cached a few seconds).",
    registers: [registry],
    async collect() {
      this.set((await read()).activeSessions);
    },
  });
  new Gauge({
    name: `${PREFIX}backchannel_queue_depth`,
    help: "Back-channel logout notifications waiting for delivery (not delivered, not abandoned).",
    registers: [registry],
    async collect() {
      this.set((await read()).backchannelPending);
    },
  });
  new Gauge({
    name: `${PREFIX}backchannel_queue_oldest_age_seconds`,
    help: "Age of the oldest back-channel logout notification still waiting (0 when none waits).",
    registers: [registry],
    async collect() {
      const { backchannelOldest } = await read();
      this.set(backchannelOldest ? Math.max(0, (ctx.clock.now().getTime() - backchannelOldest.getTime()) / 1000) : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}webhook_queue_depth`,
    help: "Webhook deliveries waiting (not delivered, not dead-lettered), retries included.",
    registers: [registry],
    async collect() {
      this.set((await read()).webhookPending);
    },
  });
  new Gauge({
    name: `${PREFIX}webhook_queue_oldest_age_seconds`,
    help: "Age of the oldest webhook delivery still waiting (0 when none waits).",
    registers: [registry],
    async collect() {
      const { webhookOldest } = await read();
      this.set(webhookOldest ? Math.max(0, (ctx.clock.now().getTime() - webhookOldest.getTime()) / 1000) : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}webhook_dead_letters`,
    help: "Webhook deliveries that gave up after their last retry (shown to admins; redeliverable).",
    registers: [registry],
    async collect() {
      this.set((await read()).webhookDead);
    },
  });
  return registry;
}

/** The exposition text of the process registry and one app's registry. */
export async function metricsText(app: Registry): Promise<string> {
  const [processText, appText] = await Promise.all([processRegistry.metrics(), app.metrics()]);
  return `${processText}\n${appText}`;
}

export const METRICS_CONTENT_TYPE = processRegistry.contentType;
