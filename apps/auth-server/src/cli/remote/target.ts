import { readFileSync } from "node:fs";
import { CliFailure } from "../database.ts";
import { type CliIo, UsageError } from "../types.ts";

/**
 * Remote mode (#14): `--url BASE --api-key KEY` (or TESSERA_URL and TESSERA_API_KEY / TESSERA_API_KEY_FILE) make a
 * command act through a running server's admin API instead of opening the database, so the CLI works while a server
 * holds the embedded database. The key is never accepted in the URL and never printed.
 */
export interface RemoteTarget {
  baseUrl: string;
  apiKey: string;
}

const REMOTE_FLAGS = new Set(["--url", "--api-key", "--api-key-file"]);

/** Splits the remote flags off a command's arguments (both `--flag value` and `--flag=value`). */
export function splitRemoteFlags(argv: string[]): { rest: string[]; flags: Record<string, string> } {
  const rest: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!REMOTE_FLAGS.has(name)) {
      rest.push(arg);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "") throw new UsageError(`${name} needs a value`);
    flags[name.slice(2)] = value;
  }
  return { rest, flags };
}

const readKeyFile = (path: string) => {
  try {
    return readFileSync(path, "utf8").replace(/\r?\n$/, "");
  } catch {
    throw new CliFailure(`cannot read the API key file ${path}`, 66);
  }
};

/** The remote target from flags or environment, or null (local mode: the command opens the database). */
export function remoteTarget(flags: Record<string, string>, io: CliIo): RemoteTarget | null {
  const url = flags.url ?? io.env.TESSERA_URL;
  if (!url) {
    if (flags["api-key"] || flags["api-key-file"]) throw new UsageError("--api-key needs --url (or TESSERA_URL)");
    return null;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError("--url must be the server's base URL, e.g. https://id.example.com");
  }
  if (!/^https?:$/.test(parsed.protocol) || parsed.username || parsed.password || parsed.search) {
    throw new UsageError("--url must be an http(s) base URL without credentials or query");
  }
  const sources = [
    flags["api-key"],
    flags["api-key-file"] ? readKeyFile(flags["api-key-file"]) : undefined,
    io.env.TESSERA_API_KEY,
    io.env.TESSERA_API_KEY_FILE ? readKeyFile(io.env.TESSERA_API_KEY_FILE) : undefined,
  ];
  const apiKey = sources.find((s) => s !== undefined && s !== "");
  if (!apiKey) throw new UsageError("remote mode needs an admin API key: --api-key, --api-key-file or TESSERA_API_KEY");
  return { baseUrl: parsed.origin + parsed.pathname.replace(/\/+$/, ""), apiKey };
}

/** One admin API call; an error answer becomes a CliFailure with the server's code (and field errors). */
export async function adminApi<T>(
  target: RemoteTarget,
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${target.baseUrl}/admin/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${target.apiKey}`,
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new CliFailure(`cannot reach ${target.baseUrl}: ${(error as Error).message}`, 69);
  }
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    throw new CliFailure(`${target.baseUrl} answered ${response.status} without JSON: is it a Tessera server?`, 69);
  }
  if (response.ok) return json as T;
  const error = (json as { error?: { code?: string; message?: string; fields?: { field: string; message: string }[] } })
    ?.error;
  const details = (error?.fields ?? []).map((f) => `\n  ${f.field}: ${f.message}`).join("");
  const exit = response.status === 401 || response.status === 403 ? 77 : response.status === 400 ? 65 : 1;
  throw new CliFailure(
    `${error?.message ?? `HTTP ${response.status}`} (${error?.code ?? response.status})${details}`,
    exit,
  );
}
