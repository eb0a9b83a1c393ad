import { parseArgs } from "node:util";
import { archivePlanByName, createPlan, getPlan, plansList, planView } from "../../libraries/billing/plans.ts";
import { systemClock } from "../../libraries/clock.ts";
import { withDatabase } from "../database.ts";
import { type Command, jsonFlagArgs, UsageError } from "../types.ts";
import { CLI_ACTOR, runAction } from "./clients.ts";

type PlanView = Awaited<ReturnType<typeof planView>>;

export function describePlan(plan: PlanView): string {
  const prices = [
    plan.stripe_price ? `Stripe ${plan.stripe_price}` : null,
    plan.crypto_price ? `${plan.crypto_price} ${plan.crypto_currency} (crypto)` : null,
  ].filter(Boolean);
  return [
    `${plan.name}  ${plan.kind}${plan.duration_days ? `, ${plan.duration_days} days` : ""}${plan.archived_at ? "  [archived]" : ""}`,
    `  price: ${prices.join(", ")}`,
    `  entitlements: ${plan.entitlements.join(", ")}`,
    `  apps: ${plan.clients ? plan.clients.join(", ") : "every app"}`,
  ].join("\n");
}

/** The arguments of `plans create` as the library's input (the same for local and remote mode). */
export function planCreateArgs(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      name: { type: "string" },
      description: { type: "string" },
      "stripe-price": { type: "string" },
      "crypto-price": { type: "string" },
      "crypto-currency": { type: "string" },
      entitlement: { type: "string", multiple: true },
      client: { type: "string", multiple: true },
      "duration-days": { type: "string" },
      json: { type: "boolean" },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.name) throw new UsageError("--name is required");
  if (!values.entitlement?.length) throw new UsageError("give at least one --entitlement");
  const duration = values["duration-days"];
  if (duration !== undefined && !/^\d{1,5}$/.test(duration)) throw new UsageError("--duration-days takes a number");
  const input = {
    name: values.name,
    ...(values.description !== undefined ? { description: values.description } : {}),
    ...(values["stripe-price"] !== undefined ? { stripe_price: values["stripe-price"] } : {}),
    ...(values["crypto-price"] !== undefined ? { crypto_price: values["crypto-price"] } : {}),
    ...(values["crypto-currency"] !== undefined ? { crypto_currency: values["crypto-currency"] } : {}),
    entitlements: values.entitlement,
    ...(values.client ? { clients: values.client } : {}),
    ...(duration !== undefined ? { duration_days: Number(duration) } : {}),
  };
  return { input, json: values.json };
}

export const plansCreate: Command = {
  name: "plans create",
  summary: "Create a plan: a Stripe price and/or a crypto price that grants entitlements (kind from the Stripe price).",
  usage:
    "tessera plans create --name NAME (--stripe-price PRICE_ID | --crypto-price 5.00 --crypto-currency USD)... " +
    "--entitlement NAME... [--client CLIENT_ID]... [--duration-days N] [--description TEXT] [--json]",
  async run(argv, io) {
    const { input, json } = planCreateArgs(argv);
    await withDatabase(io, async (database, config) => {
      const ctx = { db: database.db, clock: systemClock, config };
      const view = await planView(ctx, await runAction(() => createPlan(ctx, input, CLI_ACTOR)));
      io.out(json ? JSON.stringify(view, null, 2) : `Created plan:\n${describePlan(view)}`);
    });
    return 0;
  },
};

export const plansListCommand: Command = {
  name: "plans list",
  summary: "List the plans on sale (--all includes archived ones).",
  usage: "tessera plans list [--all] [--json]",
  async run(argv, io) {
    const all = argv.includes("--all");
    const { json, positionals } = jsonFlagArgs(argv.filter((a) => a !== "--all"));
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    await withDatabase(io, async (database, config) => {
      const ctx = { db: database.db, clock: systemClock, config };
      const views = await Promise.all((await plansList(ctx, all)).map((p) => planView(ctx, p)));
      if (json) io.out(JSON.stringify(views, null, 2));
      else if (views.length === 0) io.out("No plans.");
      else io.out(views.map(describePlan).join("\n"));
    });
    return 0;
  },
};

export function oneName(argv: string[]) {
  const { json, positionals } = jsonFlagArgs(argv);
  if (positionals.length !== 1) throw new UsageError("give the plan's name");
  return { json, name: positionals[0] as string };
}

export const plansShow: Command = {
  name: "plans show",
  summary: "Show one plan.",
  usage: "tessera plans show <name> [--json]",
  async run(argv, io) {
    const { json, name } = oneName(argv);
    await withDatabase(io, async (database, config) => {
      const ctx = { db: database.db, clock: systemClock, config };
      const view = await planView(ctx, await runAction(() => getPlan(ctx, name)));
      io.out(json ? JSON.stringify(view, null, 2) : describePlan(view));
    });
    return 0;
  },
};

export const plansArchive: Command = {
  name: "plans archive",
  summary: "Take a plan off sale; what was already bought keeps its entitlements.",
  usage: "tessera plans archive <name> [--json]",
  async run(argv, io) {
    const { json, name } = oneName(argv);
    await withDatabase(io, async (database, config) => {
      const ctx = { db: database.db, clock: systemClock, config };
      const view = await planView(ctx, await runAction(() => archivePlanByName(ctx, name, CLI_ACTOR)));
      io.out(json ? JSON.stringify(view, null, 2) : `Archived plan ${view.name}.`);
    });
    return 0;
  },
};

export const planCommands: Command[] = [plansCreate, plansListCommand, plansShow, plansArchive];
