import { ConfigError } from "../config/index.ts";
import { adminCommands } from "./commands/admin.ts";
import { clientCommands } from "./commands/clients.ts";
import { dbMigrate } from "./commands/db.ts";
import { keyCommands } from "./commands/keys.ts";
import { providerCommands } from "./commands/providers.ts";
import { throttleCommands } from "./commands/throttle.ts";
import { usersDisable, usersEnable } from "./commands/users.ts";
import { CliFailure } from "./database.ts";
import { type CliIo, type Command, UsageError } from "./types.ts";

/** Every command. Areas add theirs here. */
export const commands: Command[] = [
  dbMigrate,
  ...adminCommands,
  ...clientCommands,
  ...keyCommands,
  ...providerCommands,
  ...throttleCommands,
  usersDisable,
  usersEnable,
];

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
