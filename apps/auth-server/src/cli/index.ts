import { ConfigError } from "../config/index.ts";
import { adminCommands } from "./commands/admin.ts";
import { clientCommands } from "./commands/clients.ts";
import { dbMigrate } from "./commands/db.ts";
import { keyCommands } from "./commands/keys.ts";
import { planCommands } from "./commands/plans.ts";
import { providerCommands } from "./commands/providers.ts";
import { roleCommands } from "./commands/roles.ts";
import { throttleCommands } from "./commands/throttle.ts";
import { userAuthorizationCommands } from "./commands/user-authorization.ts";
import { usersDisable, usersEnable } from "./commands/users.ts";
import { webhookCommands } from "./commands/webhooks.ts";
import { CliFailure } from "./database.ts";
import { withRemoteMode } from "./remote/commands.ts";
import { type CliIo, type Command, UsageError } from "./types.ts";

/** Every command. Areas add theirs here. `withRemoteMode`: --url/--api-key act through a running server (#14). */
export const commands: Command[] = withRemoteMode([
  dbMigrate,
  ...adminCommands,
  ...clientCommands,
  ...keyCommands,
  ...planCommands,
  ...providerCommands,
  ...throttleCommands,
  usersDisable,
  usersEnable,
  ...roleCommands,
  ...userAuthorizationCommands,
  ...webhookCommands,
]);

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "tessera — administer a Tessera identity provider",
    "",
    "Usage: tessera <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Options for every command: --help. Commands that print data accept --json.",
    "The database is chosen as the server chooses it: DATABASE_URL, or the embedded one in DATA_DIR (default .data/).",
    "Remote mode (clients list|show|create|rotate-secret|disable|enable, users disable|enable): --url BASE with",
    "--api-key KEY or --api-key-file PATH (or TESSERA_URL, TESSERA_API_KEY, TESSERA_API_KEY_FILE) act through a",
    "running server's admin API instead of opening the database.",
  ].join("\n");
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    io.out(help());
    return 0;
  }
  // Longest command name that prefixes argv ("clients create" before "clients").
  const command = commands
    .filter((c) => {
      const words = c.name.split(" ");
      return words.every((w, i) => argv[i] === w);
    })
    .sort((a, b) => b.name.length - a.name.length)[0];
  if (!command) {
    io.err(`tessera: unknown command "${argv.join(" ")}"\n\n${help()}`);
    return 64;
  }
  const rest = argv.slice(command.name.split(" ").length);
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(`${command.summary}\n\nUsage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`tessera ${command.name}: ${error.message}\n\nUsage: ${command.usage}`);
      return 64;
    }
    if (error instanceof ConfigError) {
      io.err(`tessera: ${error.message}`);
      return 78;
    }
    if (error instanceof CliFailure) {
      io.err(`tessera ${command.name}: ${error.message}`);
      return error.exitCode;
    }
    // Parse errors from node:util parseArgs carry a code; show the message, not a stack.
    if ((error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`tessera ${command.name}: ${(error as Error).message}\n\nUsage: ${command.usage}`);
      return 64;
    }
    io.err(`tessera ${command.name}: failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
