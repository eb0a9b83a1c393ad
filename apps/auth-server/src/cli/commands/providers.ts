import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Database } from "@tessera/db";
import type { Config } from "../../config/index.ts";
import { systemClock } from "../../libraries/clock.ts";
import {
  createProvider,
  getProvider,
  listProviders,
  providerView,
  setProviderEnabled,
} from "../../libraries/federation/providers.ts";
import { withDatabase } from "../database.ts";
import { type CliIo, type Command, jsonFlagArgs, UsageError } from "../types.ts";
import { CLI_ACTOR, runAction } from "./clients.ts";

type View = ReturnType<typeof providerView>;

const ctxOf = (database: { db: Database }, config: Config) => ({ db: database.db, clock: systemClock, config });

export function describeProvider(v: View): string {
  return [
    `slug:               ${v.slug}`,
    `type:               ${v.type}${v.preset && v.type !== "steam" ? ` (${v.preset})` : ""}`,
    `display_name:       ${v.display_name}`,
    `status:             ${v.enabled ? "enabled" : `disabled since ${v.disabled_at}`}`,
    ...(v.issuer ? [`issuer:             ${v.issuer}`] : []),
    ...(v.client_id ? [`client_id:          ${v.client_id}`] : []),
    `client_secret:      ${v.client_secret_set ? "set (encrypted at rest)" : "-"}`,
    `scopes:             ${v.scopes.join(" ") || "-"}`,
    `trusted_for_email:  ${v.trusted_for_email}`,
    `shown for clients:  ${v.client_ids === null ? "all" : v.client_ids.join(" ") || "none"}`,
    ...Object.entries(v.endpoints).map(([k, u]) => `endpoint ${k}:`.padEnd(20) + u),
    `callback URL:       <issuer>/federation/${v.slug}/callback`,
  ].join("\n");
}

const print = (io: CliIo, json: boolean | undefined, v: View) =>
  io.out(json ? JSON.stringify(v, null, 2) : describeProvider(v));

/** The arguments of `providers create` as the library's input (the same for local and remote mode). */
export function providerCreateArgs(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      slug: { type: "string" },
      type: { type: "string" },
      preset: { type: "string" },
      issuer: { type: "string" },
      name: { type: "string" },
      "client-id": { type: "string" },
      "client-secret-file": { type: "string" },
      scope: { type: "string", multiple: true },
      "trusted-for-email": { type: "boolean" },
      client: { type: "string", multiple: true },
      endpoint: { type: "string", multiple: true },
      json: { type: "boolean" },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const preset = values.preset;
  const type = values.type ?? (preset === "steam" ? "steam" : preset ? "oauth2" : undefined);
  if (!type) throw new UsageError("give --type oidc --issuer URL, or --preset github|discord|twitch|steam");
  if (!values.slug && !preset) throw new UsageError("--slug is required");
  // The secret comes from a file (never a flag: flags end up in shell history and `ps`).
  let clientSecret: string | undefined;
  if (values["client-secret-file"]) {
    try {
      clientSecret = readFileSync(values["client-secret-file"], "utf8").trim();
    } catch {
      throw new UsageError(`cannot read ${values["client-secret-file"]}`);
    }
  }
  const endpoints: Record<string, string> = {};
  for (const e of values.endpoint ?? []) {
    const at = e.indexOf("=");
    if (at < 1) throw new UsageError("--endpoint takes NAME=URL");
    endpoints[e.slice(0, at)] = e.slice(at + 1);
  }
  const input = {
    slug: values.slug ?? preset,
    type,
    ...(preset ? { preset } : {}),
    ...(values.issuer ? { issuer: values.issuer } : {}),
    ...(values.name ? { displayName: values.name } : {}),
    ...(values["client-id"] ? { clientId: values["client-id"] } : {}),
    ...(clientSecret ? { clientSecret } : {}),
    ...(values.scope ? { scopes: values.scope } : {}),
    ...(values["trusted-for-email"] ? { trustedForEmail: true } : {}),
    ...(values.client ? { clientIds: values.client } : {}),
    ...(Object.keys(endpoints).length ? { endpoints } : {}),
  };
  return { input, json: values.json };
}

export const providersCreate: Command = {
  name: "providers create",
  summary: "Add an upstream sign-in provider (OIDC issuer, github/discord/twitch preset, or Steam).",
  usage:
    "tessera providers create --slug SLUG (--type oidc --issuer URL | --preset github|discord|twitch | --preset steam) " +
    "[--client-id ID --client-secret-file PATH] [--name NAME] [--scope S]... [--trusted-for-email] [--client APP_CLIENT_ID]... " +
    "[--endpoint NAME=URL]... [--json]",
  async run(argv, io) {
    const { input, json } = providerCreateArgs(argv);
    await withDatabase(io, async (database, config) => {
      const created = await runAction(() => createProvider(ctxOf(database, config), input, CLI_ACTOR));
      print(io, json, providerView(created));
    });
    return 0;
  },
};

export const providersList: Command = {
  name: "providers list",
  summary: "List upstream sign-in providers.",
  usage: "tessera providers list [--json]",
  async run(argv, io) {
    const { json, positionals } = jsonFlagArgs(argv);
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    await withDatabase(io, async (database, config) => {
      const views = (await listProviders(ctxOf(database, config))).map(providerView);
      if (json) io.out(JSON.stringify({ providers: views }, null, 2));
      else if (views.length === 0) io.out("No providers.");
      else
        for (const v of views)
          io.out(`${v.slug.padEnd(16)} ${v.type.padEnd(7)} ${v.enabled ? "enabled " : "disabled"} ${v.display_name}`);
    });
    return 0;
  },
};

function slugCommand(name: "show" | "disable" | "enable", summary: string): Command {
  return {
    name: `providers ${name}`,
    summary,
    usage: `tessera providers ${name} SLUG [--json]`,
    async run(argv, io) {
      const { json, positionals } = jsonFlagArgs(argv);
      if (positionals.length !== 1) throw new UsageError("expected exactly one provider slug");
      const slug = positionals[0] as string;
      await withDatabase(io, async (database, config) => {
        const ctx = ctxOf(database, config);
        const row = await runAction(() =>
          name === "show" ? getProvider(ctx, slug) : setProviderEnabled(ctx, slug, name === "enable", CLI_ACTOR),
        );
        print(io, json, providerView(row));
      });
      return 0;
    },
  };
}

export const providerCommands: Command[] = [
  providersCreate,
  providersList,
  slugCommand("show", "Show one upstream sign-in provider."),
  slugCommand("disable", "Disable a provider: its button goes away and it signs nobody in (links are kept)."),
  slugCommand("enable", "Enable a disabled provider again."),
];
