import { createHmac, timingSafeEqual } from "node:crypto";
import { TesseraConfigError, TesseraError } from "./errors.ts";
import { MemoryRevokedSessionStore, type RevokedSessionStore } from "./revocation.ts";

/** The event types Tessera sends (issue #16). */
export type WebhookEventType =
  | "user.updated"
  | "user.deleted"
  | "session.ended"
  | "roles.changed"
  | "entitlements.changed"
  | "consent.revoked";

/** A verified event: the Standard Webhooks payload (`type`, `timestamp`, `data`) and its `webhook-id`. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType | (string & {});
  /** When the change happened (ISO 8601), not when this attempt was sent. */
  timestamp: string;
  /** `sub` (the user), and `sid` for `session.ended`. */
  data: { sub: string; sid?: string; [key: string]: unknown };
}

/**
 * What `verify` needs: the headers and the RAW body exactly as received (a parsed and re-serialised JSON body does not
 * match its signature). A web `Request` works as is.
 */
export type WebhookRequest =
  | Request
  | {
      headers: Headers | Record<string, string | string[] | undefined>;
      body: string | Uint8Array;
    };

export interface WebhookOptions {
  /**
   * The client's signing secret (`whsec_…`), shown once by `tessera clients webhook set|rotate-secret`. After a
   * rotation Tessera signs with the new and the previous secret for 24 hours (`webhook-signature` lists both), so
   * either verifies while the new one is deployed.
   */
  secret: string;
  /** How far `webhook-timestamp` may be from now, either way. Default 300 seconds. */
  toleranceSeconds?: number;
  /**
   * Where delivered `webhook-id`s are remembered (for twice the tolerance), so a replay or a redelivery of an event
   * already handled is refused. Same interface as the revoked-session store; default an in-memory bounded map. Use a
   * shared store (Redis) when the app runs several instances.
   */
  deliveredIds?: RevokedSessionStore;
  /** Called for `user.deleted`, before the id is remembered: if it throws, Tessera's retry runs it again. */
  onUserDeleted?: (sub: string, event: WebhookEvent) => void | Promise<void>;
}

/** What the SDK does on an event; wired by the client (revoked sessions, the claims refresh). @internal */
export interface WebhookReactions {
  sessionEnded(sid: string, sub: string): Promise<unknown>;
  claimsChanged(sub: string): void;
}

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const TIMESTAMP = /^\d{1,12}$/;

/**
 * Verifies Tessera's webhooks (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` =
 * `v1,` base64 HMAC-SHA256 over `id.timestamp.body` with the `whsec_` secret) and reacts to them:
 * `roles.changed`/`entitlements.changed` make the user's next request refresh its claims at once,
 * `session.ended` revokes the session here, `user.deleted` calls `onUserDeleted`.
 *
 * @example
 * ```ts
 * // Fastify: keep the raw body for this route.
 * app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => done(null, body));
 * app.post("/webhooks/tessera", async (request, reply) => {
 *   await tessera.webhooks.verify({ headers: request.headers, body: request.body as string });
 *   return reply.code(204).send();
 * });
 * ```
 */
export class TesseraWebhooks {
  readonly #options: WebhookOptions | undefined;
  readonly #key: Buffer | undefined;
  readonly #tolerance: number;
  readonly #delivered: RevokedSessionStore;
  readonly #reactions: WebhookReactions;
  readonly #now: () => number;

  constructor(options: WebhookOptions | undefined, reactions: WebhookReactions, now: () => number) {
    this.#options = options;
    this.#reactions = reactions;
    this.#now = now;
    this.#tolerance = options?.toleranceSeconds ?? 300;
    if (options) {
      if (typeof options.secret !== "string" || !options.secret.startsWith("whsec_")) {
        throw new TesseraConfigError("webhooks.secret: must be the client's webhook secret, starting with whsec_");
      }
      this.#key = Buffer.from(options.secret.slice("whsec_".length), "base64");
      if (this.#key.length < 24) throw new TesseraConfigError("webhooks.secret: must hold at least 24 bytes");
      if (!Number.isInteger(this.#tolerance) || this.#tolerance < 1 || this.#tolerance > 3600) {
        throw new TesseraConfigError("webhooks.toleranceSeconds: must be an integer from 1 to 3600");
      }
    }
    this.#delivered = options?.deliveredIds ?? new MemoryRevokedSessionStore({ maxEntries: 100_000, now });
  }

  /**
   * Verifies a webhook request and reacts to it; returns the event. Throws a {@link TesseraError}:
   * WEBHOOK_SIGNATURE_INVALID (answer 400), WEBHOOK_TIMESTAMP_INVALID (400), WEBHOOK_REPLAYED (already handled:
   * answer 2xx so Tessera stops retrying).
   */
  async verify(request: WebhookRequest): Promise<WebhookEvent> {
    if (!this.#key) throw new TesseraConfigError("webhooks: pass { webhooks: { secret } } to createTessera");
    const { header, body } = await read(request);
    const id = header("webhook-id");
    const timestamp = header("webhook-timestamp");
    const signatures = header("webhook-signature");
    if (!id || !ID.test(id) || !timestamp || !signatures) throw new TesseraError("WEBHOOK_SIGNATURE_INVALID");
    if (!TIMESTAMP.test(timestamp)) throw new TesseraError("WEBHOOK_TIMESTAMP_INVALID");
    const nowSeconds = Math.floor(this.#now() / 1000);
    if (Math.abs(nowSeconds - Number(timestamp)) > this.#tolerance) throw new TesseraError("WEBHOOK_TIMESTAMP_INVALID");
    const expected = createHmac("sha256", this.#key).update(`${id}.${timestamp}.`).update(body).digest();
    const matches = signatures.split(" ").some((entry) => {
      const [version, value] = entry.split(",", 2);
      if (version !== "v1" || !value) return false;
      const given = Buffer.from(value, "base64");
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
    if (!matches) throw new TesseraError("WEBHOOK_SIGNATURE_INVALID");
    if (await this.#delivered.has(id)) throw new TesseraError("WEBHOOK_REPLAYED");
    const event = parseEvent(id, body);
    await this.#react(event);
    // Remembered for twice the window: a replay of this signature is refused by the timestamp check after that.
    await this.#delivered.add(id, this.#tolerance * 2);
    return event;
  }

  async #react(event: WebhookEvent): Promise<void> {
    const { sub, sid } = event.data;
    if (event.type === "roles.changed" || event.type === "entitlements.changed") this.#reactions.claimsChanged(sub);
    else if (event.type === "session.ended" && typeof sid === "string") await this.#reactions.sessionEnded(sid, sub);
    else if (event.type === "user.deleted") await this.#options?.onUserDeleted?.(sub, event);
  }
}

async function read(request: WebhookRequest): Promise<{ header: (name: string) => string | undefined; body: Buffer }> {
  if (typeof Request !== "undefined" && request instanceof Request) {
    const body = Buffer.from(await request.arrayBuffer());
    return { header: (name) => request.headers.get(name) ?? undefined, body };
  }
  const { headers, body } = request as Exclude<WebhookRequest, Request>;
  if (typeof body !== "string" && !(body instanceof Uint8Array)) {
    throw new TesseraConfigError("webhooks.verify: pass the raw body (string or Buffer), not a parsed object");
  }
  const header =
    headers instanceof Headers
      ? (name: string) => headers.get(name) ?? undefined
      : (name: string) => {
          const value = headers[name];
          return Array.isArray(value) ? value[0] : value;
        };
  return { header, body: typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body) };
}

function parseEvent(id: string, body: Buffer): WebhookEvent {
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString("utf8"));
  } catch {
    throw new TesseraError("WEBHOOK_SIGNATURE_INVALID");
  }
  const p = payload as Partial<WebhookEvent> | null;
  if (!p || typeof p.type !== "string" || typeof p.data !== "object" || p.data === null) {
    throw new TesseraError("WEBHOOK_SIGNATURE_INVALID");
  }
  if (typeof p.data.sub !== "string") throw new TesseraError("WEBHOOK_SIGNATURE_INVALID");
  return { id, type: p.type, timestamp: String(p.timestamp ?? ""), data: p.data };
}

/**
 * Users whose claims changed at Tessera (a `roles.changed`/`entitlements.changed` webhook): an access JWT issued
 * before the mark is refreshed on its next request instead of at its expiry. In-memory and bounded. @internal
 */
export class StaleClaims {
  readonly #marks = new Map<string, number>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  mark(sub: string, nowMs: number): void {
    this.#marks.delete(sub);
    if (this.#marks.size >= this.#max) {
      const oldest = this.#marks.keys().next().value;
      if (oldest !== undefined) this.#marks.delete(oldest);
    }
    this.#marks.set(sub, nowMs);
  }

  /** Whether an access JWT of `sub` issued at `iat` (seconds) may predate the change. */
  isStale(sub: string, iat: number): boolean {
    if (this.#marks.size === 0) return false;
    const mark = this.#marks.get(sub);
    return mark !== undefined && iat * 1000 <= mark;
  }

  /**
   * A refresh that started at or after the mark picked up the change (Tessera commits a change before it sends its
   * webhook), so the mark is done with and the new access JWT is used as is.
   */
  refreshed(sub: string, startedMs: number): void {
    const mark = this.#marks.get(sub);
    if (mark !== undefined && mark <= startedMs) this.#marks.delete(sub);
  }
}
