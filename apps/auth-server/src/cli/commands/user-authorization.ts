import { parseArgs } from "node:util";
import type { CoreContext } from "../../context.ts";
import {
  type AssignmentOverview,
  assignRole,
  grantEntitlement,
  revokeEntitlement,
  roleByName,
  unassignRole,
  userAuthorizationOverview,
} from "../../libraries/authorization/index.ts";
import { systemClock } from "../../libraries/clock.ts";
import { normalizeEmail } from "../../libraries/throttle/keys.ts";
import { findUserByEmail } from "../../queries/users.ts";
import { CliFailure, withDatabase } from "../database.ts";
import { type CliIo, type Command, UsageError } from "../types.ts";
import { CLI_ACTOR, runAction } from "./clients.ts";
import { roleScope } from "./roles.ts";

/** Opens the database, finds the account by --email, and runs `fn` with a context. */
async function withUser<T>(
  io: CliIo,
  email: string | undefined,
  fn: (ctx: CoreContext, user: { id: string; email: string }) => Promise<T>,
): Promise<T> {
  if (email === undefined) throw new UsageError("--email is required");
  const normalized = normalizeEmail(email);
  return withDatabase(io, async (database, config) => {
    const ctx = { db: database.db, clock: systemClock, config };
    const user = await findUserByEmail(database.db, normalized);
    if (!user || user.deletedAt) throw new CliFailure(`No account with the email ${normalized}.`);
    return fn(ctx, user);
  });
}

const roleFlags = {
  email: { type: "string" },
  client: { type: "string" },
  global: { type: "boolean" },
  role: { type: "string" },
  json: { type: "boolean" },
} as const;

const grantRole: Command = {
  name: "users grant-role",
  summary: "Give an account a role of an app (or a global role), optionally until a time.",
  usage:
    "tessera users grant-role --email EMAIL (--client CLIENT_ID | --global) --role NAME [--expires ISO_TIME] [--json]",
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: { ...roleFlags, expires: { type: "string" } }, strict: true });
    const scope = roleScope(values);
    if (values.role === undefined) throw new UsageError("--role is required");
    const roleName = values.role;
    await withUser(io, values.email, async (ctx, user) => {
      const assigned = await runAction(async () => {
        const role = await roleByName(ctx, scope, roleName);
        return assignRole(ctx, user.id, { roleId: role.id, expiresAt: values.expires ?? null }, CLI_ACTOR);
      });
      io.out(
        values.json
          ? JSON.stringify(assigned, null, 2)
          : `${user.email} has the role ${assigned.role} in ${assigned.client_id ?? "every app"}${assigned.expires_at ? ` until ${assigned.expires_at}` : ""}.`,
      );
    });
    return 0;
  },
};

const revokeRole: Command = {
  name: "users revoke-role",
  summary: "Take a role from an account.",
  usage: "tessera users revoke-role --email EMAIL (--client CLIENT_ID | --global) --role NAME [--json]",
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: roleFlags, strict: true });
    const scope = roleScope(values);
    if (values.role === undefined) throw new UsageError("--role is required");
    const roleName = values.role;
    await withUser(io, values.email, async (ctx, user) => {
      const result = await runAction(async () => {
        const role = await roleByName(ctx, scope, roleName);
        return unassignRole(ctx, user.id, role.id, CLI_ACTOR);
      });
      io.out(values.json ? JSON.stringify(result, null, 2) : `${user.email} no longer has the role ${roleName}.`);
    });
    return 0;
  },
};

const show: Command = {
  name: "users show",
  summary: "Show an account with its roles (per app) and entitlements.",
  usage: "tessera users show --email EMAIL [--json]",
  async run(argv, io) {
    const values = userShowArgs(argv);
    await withUser(io, values.email, async (ctx, user) => {
      printUserShow(io, values.json, {
        id: user.id,
        email: user.email,
        ...(await userAuthorizationOverview(ctx, user.id)),
      });
    });
    return 0;
  },
};

/** `users show`'s arguments (local and remote mode). */
export function userShowArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    options: { email: { type: "string" }, json: { type: "boolean" } },
    strict: true,
  }).values;
}

/** `users show`'s output (local and remote mode). */
export function printUserShow(
  io: CliIo,
  json: boolean | undefined,
  account: { id: string; email: string } & AssignmentOverview,
): void {
  if (json) {
    io.out(JSON.stringify(account, null, 2));
    return;
  }
  const lines = [`${account.email} (${account.id})`, "Roles:"];
  for (const r of account.roles) {
    lines.push(
      `  ${r.client_id ?? "(global)"}  ${r.role}${r.expires_at ? `  until ${r.expires_at}` : ""}${r.active ? "" : "  (expired)"}`,
    );
  }
  if (!account.roles.length) lines.push("  none");
  lines.push("Entitlements:");
  for (const e of account.entitlements) {
    lines.push(
      `  ${e.name}  ${e.client_ids ? e.client_ids.join(", ") : "every app"}  ${e.source}${e.source_ref ? ` ${e.source_ref}` : ""}${e.expires_at ? `  until ${e.expires_at}` : ""}${e.active ? "" : "  (expired)"}`,
    );
  }
  if (!account.entitlements.length) lines.push("  none");
  io.out(lines.join("\n"));
}

const entitlementsGrant: Command = {
  name: "entitlements grant",
  summary: "Grant an entitlement as an admin, to every app or only to the given ones, optionally until a time.",
  usage: "tessera entitlements grant --email EMAIL --name NAME [--client CLIENT_ID]... [--expires ISO_TIME] [--json]",
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        email: { type: "string" },
        name: { type: "string" },
        client: { type: "string", multiple: true },
        expires: { type: "string" },
        json: { type: "boolean" },
      },
      strict: true,
    });
    if (values.name === undefined) throw new UsageError("--name is required");
    const name = values.name;
    await withUser(io, values.email, async (ctx, user) => {
      const input = { name, clientIds: values.client ?? null, expiresAt: values.expires ?? null };
      const grant = await runAction(() => grantEntitlement(ctx, user.id, input, CLI_ACTOR));
      io.out(
        values.json
          ? JSON.stringify(grant, null, 2)
          : `${user.email} owns ${grant.name} in ${grant.client_ids ? grant.client_ids.join(", ") : "every app"}${grant.expires_at ? ` until ${grant.expires_at}` : ""}.`,
      );
    });
    return 0;
  },
};

const entitlementsRevoke: Command = {
  name: "entitlements revoke",
  summary:
    "Remove the admin grant of an entitlement. Grants from purchases are not touched (they end with the purchase).",
  usage: "tessera entitlements revoke --email EMAIL --name NAME [--json]",
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: { email: { type: "string" }, name: { type: "string" }, json: { type: "boolean" } },
      strict: true,
    });
    if (values.name === undefined) throw new UsageError("--name is required");
    const name = values.name;
    await withUser(io, values.email, async (ctx, user) => {
      const result = await runAction(() => revokeEntitlement(ctx, user.id, name, CLI_ACTOR));
      io.out(
        values.json
          ? JSON.stringify(result, null, 2)
          : `Removed the admin grant of ${name} from ${user.email} (grants from purchases, if any, remain).`,
      );
    });
    return 0;
  },
};

export const userAuthorizationCommands: Command[] = [
  grantRole,
  revokeRole,
  show,
  entitlementsGrant,
  entitlementsRevoke,
];
