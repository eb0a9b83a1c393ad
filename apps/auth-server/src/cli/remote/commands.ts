import { parseArgs } from "node:util";
import type { ClientView } from "../../routes/admin/client-wire.ts";
import { clientFlags, describeClient } from "../commands/clients.ts";
import { CliFailure } from "../database.ts";
import { type CliIo, type Command, jsonFlagArgs, UsageError } from "../types.ts";
import { adminApi, type RemoteTarget, remoteTarget, splitRemoteFlags } from "./target.ts";

/** The remote form of a command: same arguments (minus the remote flags), acting through the admin API. */
type RemoteRun = (argv: string[], io: CliIo, target: RemoteTarget) => Promise<number>;

const print = (io: CliIo, json: boolean | undefined, view: ClientView) =>
  io.out(json ? JSON.stringify(view, null, 2) : describeClient(view));

function oneArg(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return positionals[0] as string;
}

const seg = encodeURIComponent;

const clientAction =
  (verb: "rotate-secret" | "disable" | "enable"): RemoteRun =>
  async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    const id = oneArg(positionals, "client_id");
    print(io, json, await adminApi<ClientView>(target, "POST", `/clients/${seg(id)}/${verb}`));
    return 0;
  };

/** The id of the (live) account with exactly this email, found through the admin API's search. */
async function userIdByEmail(target: RemoteTarget, email: string): Promise<string> {
  const wanted = email.trim().toLowerCase();
  const found = await adminApi<{ users: { id: string; email: string }[] }>(
    target,
    "GET",
    `/users?${new URLSearchParams({ q: wanted, limit: "200" })}`,
  );
  const user = found.users.find((u) => u.email === wanted);
  if (!user) throw new CliFailure(`No account with the email ${wanted}.`);
  return user.id;
}

const userStatus =
  (action: "disable" | "enable"): RemoteRun =>
  async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    const id = await userIdByEmail(target, oneArg(positionals, "EMAIL"));
    const result = await adminApi<{ email: string; sessions_ended?: number }>(target, "POST", `/users/${id}/${action}`);
    if (json) io.out(JSON.stringify(result, null, 2));
    else if (action === "disable") io.out(`Disabled ${result.email}; ${result.sessions_ended ?? 0} session(s) ended.`);
    else io.out(`Enabled ${result.email}; they can sign in again.`);
    return 0;
  };

/** Commands that work against a running server, by name. Anything else refuses --url with a usage error. */
export const REMOTE: Record<string, RemoteRun> = {
  "clients list": async (argv, io, target) => {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { active: { type: "boolean" }, json: { type: "boolean" } },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const views: ClientView[] = [];
    let after: string | null = null;
    do {
      const query = new URLSearchParams({ limit: "500", include_disabled: values.active ? "false" : "true" });
      if (after) query.set("after", after);
      const page: { clients: ClientView[]; next_after: string | null } = await adminApi(
        target,
        "GET",
        `/clients?${query}`,
      );
      views.push(...page.clients);
      after = page.next_after;
    } while (after);
    if (values.json) io.out(JSON.stringify(views, null, 2));
    else if (views.length === 0) io.out("No clients yet.");
    else for (const v of views) io.out(`${v.client_id}  ${v.disabled_at ? "disabled" : "active  "}  ${v.name}`);
    return 0;
  },
  "clients show": async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    print(io, json, await adminApi<ClientView>(target, "GET", `/clients/${seg(oneArg(positionals, "client_id"))}`));
    return 0;
  },
  "clients create": async (argv, io, target) => {
    const { values, positionals } = parseArgs({
      args: argv,
      options: clientFlags,
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.name) throw new UsageError("--name is required");
    if (!values["redirect-uri"]?.length) throw new UsageError("at least one --redirect-uri is required");
    const body = Object.fromEntries(
      Object.entries({
        name: values.name,
        redirect_uris: values["redirect-uri"],
        post_logout_redirect_uris: values["post-logout-redirect-uri"],
        backchannel_logout_uri: values["backchannel-logout-uri"],
        logo_uri: values["logo-uri"],
        first_party: values["first-party"] ?? false,
        direct_sign_in: values["direct-sign-in"] ?? false,
        allowed_scopes: values.scope,
        id_token_signed_response_alg: values.alg,
        access_token_ttl_seconds: values["access-token-ttl"] ? Number(values["access-token-ttl"]) : undefined,
      }).filter(([, v]) => v !== undefined),
    );
    print(io, values.json, await adminApi<ClientView>(target, "POST", "/clients", body));
    return 0;
  },
  "clients rotate-secret": clientAction("rotate-secret"),
  "clients disable": clientAction("disable"),
  "clients enable": clientAction("enable"),
  "users disable": userStatus("disable"),
  "users enable": userStatus("enable"),
};

/**
 * Wraps every command so `--url`/`--api-key` (or TESSERA_URL) run its remote form, and a command without one says so
 * instead of silently opening the local database.
 */
export function withRemoteMode(commands: Command[]): Command[] {
  return commands.map((command) => ({
    ...command,
    usage: REMOTE[command.name]
      ? `${command.usage}\n  remote: [--url BASE --api-key KEY|--api-key-file PATH]`
      : command.usage,
    async run(argv, io) {
      const { rest, flags } = splitRemoteFlags(argv);
      const target = remoteTarget(flags, io);
      if (!target) return command.run(rest, io);
      const remote = REMOTE[command.name];
      if (!remote) throw new UsageError(`"${command.name}" works on the local database only; it does not take --url`);
      return remote(rest, io, target);
    },
  }));
}
