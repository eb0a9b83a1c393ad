import { parseArgs } from "node:util";
import {
  createRole,
  deleteRole,
  listAllRoles,
  listRoles,
  type RoleScope,
  type RoleView,
  roleByName,
} from "../../libraries/authorization/index.ts";
import { systemClock } from "../../libraries/clock.ts";
import { withDatabase } from "../database.ts";
import { type Command, UsageError } from "../types.ts";
import { CLI_ACTOR, runAction } from "./clients.ts";

/** `--client CLIENT_ID` or `--global`, exactly one (`optional`: neither is allowed too, meaning "every app"). */
export function roleScope(values: { client?: string | undefined; global?: boolean | undefined }): RoleScope {
  if (values.client !== undefined && values.global) throw new UsageError("give either --client or --global, not both");
  if (values.client === undefined && !values.global) throw new UsageError("--client CLIENT_ID or --global is required");
  return values.client ?? null;
}

export const describeRole = (r: RoleView) =>
  `${r.client_id ?? "(global)"}  ${r.name}  ${r.id}${r.permissions.length ? `  [${r.permissions.join(", ")}]` : ""}`;

const rolesCreate: Command = {
  name: "roles create",
  summary: "Create a role in an app (or a global one) with its permissions, created as needed.",
  usage:
    "tessera roles create (--client CLIENT_ID | --global) --name NAME [--permission NAME]... [--description TEXT] [--json]",
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        client: { type: "string" },
        global: { type: "boolean" },
        name: { type: "string" },
        permission: { type: "string", multiple: true },
        description: { type: "string" },
        json: { type: "boolean" },
      },
      strict: true,
    });
    const scope = roleScope(values);
    if (values.name === undefined) throw new UsageError("--name is required");
    await withDatabase(io, async (database, config) => {
      const ctx = { db: database.db, clock: systemClock, config };
      const input = {
        name: values.name,
        ...(values.description !== undefined ? { description: values.description } : {}),
        ...(values.permission ? { permissions: values.permission } : {}),
      };
      const role = await runAction(() => createRole(ctx, scope, input, CLI_ACTOR));
      io.out(values.json ? JSON.stringify(role, null, 2) : `Created role ${describeRole(role)}`);
    });
    return 0;
  },
};

const LIST_LIMIT = 500;

const rolesList: Command = {
  name: "roles list",
  summary: "List an app's roles (--client), or every role of every app and the global ones.",
  usage: "tessera roles list [--client CLIENT_ID | --global] [--json]",
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: { client: { type: "string" }, global: { type: "boolean" }, json: { type: "boolean" } },
      strict: true,
    });
    if (values.client !== undefined && values.global) throw new UsageError("give either --client or --global");
    await withDatabase(io, async (database, config) => {
      const ctx = { db: database.db, clock: systemClock, config };
      const roles = await runAction(() =>
        values.client !== undefined || values.global
          ? listRoles(ctx, values.client ?? null, { limit: LIST_LIMIT })
          : listAllRoles(ctx, LIST_LIMIT),
      );
      if (values.json) io.out(JSON.stringify({ roles }, null, 2));
      else io.out(roles.length ? roles.map(describeRole).join("\n") : "No roles.");
    });
    return 0;
  },
};

const rolesDelete: Command = {
  name: "roles delete",
  summary: "Delete a role; every assignment of it is removed too.",
  usage: "tessera roles delete (--client CLIENT_ID | --global) --name NAME [--json]",
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        client: { type: "string" },
        global: { type: "boolean" },
        name: { type: "string" },
        json: { type: "boolean" },
      },
      strict: true,
    });
    const scope = roleScope(values);
    if (values.name === undefined) throw new UsageError("--name is required");
    const name = values.name;
    await withDatabase(io, async (database, config) => {
      const ctx = { db: database.db, clock: systemClock, config };
      const result = await runAction(async () => {
        const role = await roleByName(ctx, scope, name);
        return deleteRole(ctx, scope, role.id, CLI_ACTOR);
      });
      io.out(
        values.json
          ? JSON.stringify(result, null, 2)
          : `Deleted role ${describeRole(result.role)}; ${result.assignments_removed} assignment(s) removed.`,
      );
    });
    return 0;
  },
};

export const roleCommands: Command[] = [rolesCreate, rolesList, rolesDelete];
