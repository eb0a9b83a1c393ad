import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { createAdmin, createApiKey } from "../../libraries/admin.ts";
import { systemClock } from "../../libraries/clock.ts";
import { CliFailure, withDatabase } from "../database.ts";
import { type Command, UsageError } from "../types.ts";
import { runAction } from "./clients.ts";

export const adminCreate: Command = {
  name: "admin create",
  summary:
    "Create the first admin account (there is no default account). Asks for the password (or reads it with " +
    "--password-stdin). Refuses if an admin exists, unless --force.",
  usage: "tessera admin create --email EMAIL [--password-stdin] [--force] [--json]",
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        email: { type: "string" },
        "password-stdin": { type: "boolean" },
        force: { type: "boolean" },
        json: { type: "boolean" },
      },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.email) throw new UsageError("--email is required");
    let password: string;
    let generated = false;
    if (values["password-stdin"]) {
      if (!io.readStdin) throw new UsageError("--password-stdin needs a standard input");
      // One trailing newline (from echo or a here-string) is not part of the password; nothing else is trimmed.
      password = (await io.readStdin()).replace(/\r?\n$/, "");
      if (password.length === 0) throw new UsageError("standard input was empty: pipe the password in");
    } else if (io.promptSecret) {
      password = await io.promptSecret(`Password for ${values.email}: `);
      const again = await io.promptSecret("Repeat the password: ");
      if (password !== again) throw new CliFailure("The passwords do not match; nothing was changed.", 65);
    } else {
      // No terminal to ask on: 144 random bits, printed once; the operator signs in with it and changes it.
      password = randomBytes(18).toString("base64url");
      generated = true;
    }
    const email = values.email;
    await withDatabase(io, async (database, config) => {
      const deps = { db: database.db, clock: systemClock, config };
      const { user, created } = await runAction(async () => {
        try {
          return await createAdmin(deps, { email, password, force: values.force ?? false });
        } catch (error) {
          if ((error as { code?: string }).code === "ADMIN_EXISTS") {
            throw new CliFailure("An admin already exists. Pass --force to make another account an admin.", 1);
          }
          throw error;
        }
      });
      if (values.json) {
        io.out(
          JSON.stringify({ id: user.id, email: user.email, created, ...(generated ? { password } : {}) }, null, 2),
        );
      } else {
        io.out(`${created ? "Created admin" : "Made admin"} ${user.email} (${user.id}).`);
        if (generated) io.out(`Password (shown once, change it after signing in): ${password}`);
      }
    });
    return 0;
  },
};

export const adminApiKeyCreate: Command = {
  name: "admin api-key create",
  summary: "Create an admin API key for scripts (Authorization: Bearer KEY); the key is shown once.",
  usage: "tessera admin api-key create --name NAME [--email ADMIN_EMAIL] [--json]",
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { name: { type: "string" }, email: { type: "string" }, json: { type: "boolean" } },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.name) throw new UsageError("--name is required");
    const name = values.name;
    await withDatabase(io, async (database, config) => {
      const deps = { db: database.db, clock: systemClock, config };
      const { apiKey, key, user } = await runAction(() => createApiKey(deps, { name, email: values.email }));
      if (values.json) {
        io.out(JSON.stringify({ id: apiKey.id, name: apiKey.name, admin: user.email, key }, null, 2));
      } else {
        io.out(`API key "${apiKey.name}" for ${user.email} (${apiKey.id}).`);
        io.out(`Key (shown once, only its hash is stored): ${key}`);
      }
    });
    return 0;
  },
};

export const adminCommands: Command[] = [adminCreate, adminApiKeyCreate];
