import { parseArgs } from "node:util";

/** One CLI command: `tessera <group> <name> [options]`. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
  /** Reads all of standard input (for secrets passed with --password-stdin and the like). */
  readStdin?(): Promise<string>;
  /** Asks a question on the terminal without echo; absent when standard input is not a terminal. */
  promptSecret?(question: string): Promise<string>;
}

export interface Command {
  /** e.g. "clients create" */
  name: string;
  summary: string;
  usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/** A usage mistake: printed with the command's usage, exit code 64 (EX_USAGE). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parses the arguments of a command whose only option is `--json`; callers check the positionals they expect. */
export function jsonFlagArgs(argv: string[]): { json: boolean; positionals: string[] } {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: "boolean" } },
    strict: true,
    allowPositionals: true,
  });
  return { json: values.json === true, positionals };
}
