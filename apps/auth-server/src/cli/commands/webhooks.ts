import { parseArgs } from "node:util";
import type { Config } from "../../config/index.ts";
import { systemClock } from "../../libraries/clock.ts";
import type { DeliveryView } from "../../libraries/webhooks/deliveries.ts";
import {
  getWebhook,
  listWebhookDeliveries,
  redeliverWebhook,
  removeWebhook,
  rotateSecretBody,
  rotateWebhookSecret,
  setWebhook,
  WEBHOOK_EVENT_TYPES,
} from "../../libraries/webhooks/index.ts";
import { rotatedWebhookView, webhookView } from "../../routes/admin/webhooks.ts";
import { withDatabase } from "../database.ts";
import { type CliIo, type Command, UsageError } from "../types.ts";
import { CLI_ACTOR, runAction } from "./clients.ts";

/** `tessera clients webhook …` and `tessera webhooks …` (issue #16): a client's signed webhook and its deliveries. */
const deps = (database: { db: import("@tessera/db").Database }, config: Config) => ({
  db: database.db,
  clock: systemClock,
  config,
});

export function webhookArgs(
  argv: string[],
  extra: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {},
) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { client: { type: "string" }, json: { type: "boolean" }, ...extra },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.client) throw new UsageError("--client CLIENT_ID is required");
  return { values: values as Record<string, string | string[] | boolean | undefined>, client: values.client as string };
}

type View = ReturnType<typeof webhookView> & { previous_secret_expires_at?: string | null };

/** `clients webhook rotate-secret`'s arguments (local and remote mode): `--overlap-seconds` within the API's bounds. */
export function rotateArgs(argv: string[]) {
  const { values, client } = webhookArgs(argv, { "overlap-seconds": { type: "string" } });
  const overlap = values["overlap-seconds"];
  if (typeof overlap !== "string") return { values, client, overlapSeconds: undefined };
  const parsed = rotateSecretBody.safeParse({ overlap_seconds: /^\d{1,7}$/.test(overlap) ? Number(overlap) : -1 });
  if (!parsed.success) throw new UsageError("--overlap-seconds must be a whole number from 0 to 604800");
  return { values, client, overlapSeconds: parsed.data.overlap_seconds };
}

export function printWebhook(io: CliIo, json: unknown, view: View): void {
  if (json) {
    io.out(JSON.stringify(view, null, 2));
    return;
  }
  io.out(`client_id: ${view.client_id}\nurl:       ${view.url}\nevents:    ${view.events.join(" ")}`);
  if (view.secret) io.out(`secret:    ${view.secret}\n(shown once: give it to the app, e.g. as WEBHOOK_SECRET)`);
}

const EVENTS = WEBHOOK_EVENT_TYPES.join("|");

export const webhookSet: Command = {
  name: "clients webhook set",
  summary: "Set a client's webhook URL and events; a new webhook prints its signing secret (shown once).",
  usage: `tessera clients webhook set --client CLIENT_ID --webhook-url URL --event ${EVENTS} [--event …]... [--json]`,
  async run(argv, io) {
    const { values, client } = webhookArgs(argv, {
      "webhook-url": { type: "string" },
      event: { type: "string", multiple: true },
    });
    if (!values["webhook-url"]) throw new UsageError("--webhook-url is required (--url is the remote-mode server)");
    if (!(values.event as string[] | undefined)?.length) throw new UsageError("at least one --event is required");
    await withDatabase(io, async (database, config) => {
      const input = { url: values["webhook-url"], events: values.event };
      const { webhook, secret } = await runAction(() => setWebhook(deps(database, config), client, input, CLI_ACTOR));
      printWebhook(io, values.json, webhookView(webhook, secret));
    });
    return 0;
  },
};

export const webhookShow: Command = {
  name: "clients webhook show",
  summary: "Show a client's webhook (never its secret).",
  usage: "tessera clients webhook show --client CLIENT_ID [--json]",
  async run(argv, io) {
    const { values, client } = webhookArgs(argv);
    await withDatabase(io, async (database, config) => {
      printWebhook(io, values.json, webhookView(await runAction(() => getWebhook(deps(database, config), client))));
    });
    return 0;
  },
};

export const webhookRotate: Command = {
  name: "clients webhook rotate-secret",
  summary:
    "Give a client's webhook a new signing secret (shown once); the old one also signs for WEBHOOK_SECRET_OVERLAP_SECONDS.",
  usage: "tessera clients webhook rotate-secret --client CLIENT_ID [--overlap-seconds 0..604800] [--json]",
  async run(argv, io) {
    const { values, client, overlapSeconds } = rotateArgs(argv);
    await withDatabase(io, async (database, config) => {
      const { webhook, secret, previousSecretExpiresAt } = await runAction(() =>
        rotateWebhookSecret(
          deps(database, config),
          client,
          CLI_ACTOR,
          overlapSeconds === undefined ? {} : { overlapSeconds },
        ),
      );
      printWebhook(io, values.json, rotatedWebhookView(webhook, secret, previousSecretExpiresAt));
    });
    return 0;
  },
};

export const webhookRemove: Command = {
  name: "clients webhook remove",
  summary: "Remove a client's webhook (queued deliveries to it are dropped).",
  usage: "tessera clients webhook remove --client CLIENT_ID [--json]",
  async run(argv, io) {
    const { values, client } = webhookArgs(argv);
    await withDatabase(io, async (database, config) => {
      await runAction(() => removeWebhook(deps(database, config), client, CLI_ACTOR));
      io.out(values.json ? JSON.stringify({ client_id: client, removed: true }) : `Webhook of ${client} removed.`);
    });
    return 0;
  },
};

/** `webhooks deliveries`' arguments (local and remote mode). */
export function deliveriesArgs(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      state: { type: "string" },
      client: { type: "string" },
      limit: { type: "string" },
      json: { type: "boolean" },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const state = values.state;
  if (state !== undefined && state !== "pending" && state !== "delivered" && state !== "dead") {
    throw new UsageError("--state must be pending, delivered or dead");
  }
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new UsageError("--limit must be 1 to 500");
  return { state: state as DeliveryView["state"] | undefined, client: values.client, limit, json: values.json };
}

/** `webhooks deliveries`' output (local and remote mode). */
export function printDeliveries(io: CliIo, json: boolean | undefined, rows: DeliveryView[]): void {
  if (json) io.out(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) io.out("No deliveries.");
  else
    for (const d of rows)
      io.out(`${d.id}  ${d.state.padEnd(9)}  ${d.eventType.padEnd(20)}  ${d.clientId}  ${d.lastError ?? ""}`);
}

export const webhookDeliveries: Command = {
  name: "webhooks deliveries",
  summary: "List recent webhook deliveries (--state dead: the ones that gave up).",
  usage: "tessera webhooks deliveries [--state pending|delivered|dead] [--client CLIENT_ID] [--limit N] [--json]",
  async run(argv, io) {
    const { state, client, limit, json } = deliveriesArgs(argv);
    await withDatabase(io, async (database, config) => {
      const rows = await listWebhookDeliveries(deps(database, config), {
        limit,
        ...(state ? { state } : {}),
        ...(client ? { clientId: client } : {}),
      });
      printDeliveries(io, json, rows);
    });
    return 0;
  },
};

export const webhookRedeliver: Command = {
  name: "webhooks redeliver",
  summary: "Queue a dead webhook delivery again (same webhook-id).",
  usage: "tessera webhooks redeliver DELIVERY_ID [--json]",
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { json: { type: "boolean" } },
      strict: true,
      allowPositionals: true,
    });
    const [id, more] = positionals;
    if (!id || more !== undefined) throw new UsageError("give exactly one DELIVERY_ID");
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new UsageError("DELIVERY_ID must be a delivery's id (a UUID)");
    await withDatabase(io, async (database, config) => {
      await runAction(() => redeliverWebhook(deps(database, config), id, CLI_ACTOR));
      io.out(values.json ? JSON.stringify({ id, state: "pending" }) : `Delivery ${id} queued again.`);
    });
    return 0;
  },
};

export const webhookCommands: Command[] = [
  webhookSet,
  webhookShow,
  webhookRotate,
  webhookRemove,
  webhookDeliveries,
  webhookRedeliver,
];
