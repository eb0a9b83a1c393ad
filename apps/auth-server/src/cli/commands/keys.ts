import { parseArgs } from "node:util";
import { systemClock } from "../../libraries/clock.ts";
import {
  keyPublishWindowSeconds,
  listSigningKeys,
  rotateSigningKey,
  type SigningAlg,
} from "../../libraries/keys/index.ts";
import { withDatabase } from "../database.ts";
import { type CliIo, type Command, jsonFlagArgs, UsageError } from "../types.ts";

const ALGS = ["RS256", "ES256", "EdDSA"];

/** `keys rotate`'s arguments (local and remote mode). */
export function keysRotateArgs(argv: string[]): { alg: SigningAlg | undefined; json: boolean | undefined } {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { alg: { type: "string" }, json: { type: "boolean" } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.alg !== undefined && !ALGS.includes(values.alg)) {
    throw new UsageError(`--alg must be one of ${ALGS.join(", ")}`);
  }
  return { alg: values.alg as SigningAlg | undefined, json: values.json };
}

/** `keys rotate`'s output (local and remote mode). */
export function printRotation(
  io: CliIo,
  json: boolean | undefined,
  rotation: { active: { kid: string; alg: string }; retired: string[]; publishedForSeconds: number },
): void {
  const { active, retired, publishedForSeconds: window } = rotation;
  if (json) {
    io.out(
      JSON.stringify({ active: { kid: active.kid, alg: active.alg }, retired, publishedForSeconds: window }, null, 2),
    );
    return;
  }
  io.out(`New ${active.alg} signing key ${active.kid} is active.`);
  for (const kid of retired) io.out(`Retired ${kid}: still published in the JWKS for ${window} s.`);
  io.out("Running servers pick up the new key within a minute.");
}

export interface KeyRow {
  kid: string;
  alg: string;
  status: string;
  created_at: string;
  retired_at: string | null;
}

/** `keys list`'s output (local and remote mode). */
export function printKeys(io: CliIo, json: boolean | undefined, rows: KeyRow[]): void {
  if (json) io.out(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) io.out("No signing keys yet: one is created when the server first starts.");
  else for (const r of rows) io.out(`${r.kid}  ${r.alg.padEnd(5)}  ${r.status.padEnd(7)}  created ${r.created_at}`);
}

export const keysRotate: Command = {
  name: "keys rotate",
  summary: "Make a new signing key active; the old one stays published until the tokens it signed have expired.",
  usage: "tessera keys rotate [--alg RS256|ES256|EdDSA] [--json]",
  async run(argv, io) {
    const args = keysRotateArgs(argv);
    await withDatabase(io, async (database, config) => {
      const deps = { db: database.db, clock: systemClock, config };
      const { active, retired } = await rotateSigningKey(deps, args.alg ?? config.tokens.signingAlg);
      printRotation(io, args.json, { active, retired, publishedForSeconds: keyPublishWindowSeconds(config) });
    });
    return 0;
  },
};

export const keysList: Command = {
  name: "keys list",
  summary: "List signing keys and whether each is active, retired (still published) or expired.",
  usage: "tessera keys list [--json]",
  async run(argv, io) {
    const { json, positionals } = jsonFlagArgs(argv);
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    await withDatabase(io, async (database, config) => {
      const keys = await listSigningKeys({ db: database.db, clock: systemClock, config });
      const rows: KeyRow[] = keys.map(({ row, status }) => ({
        kid: row.kid,
        alg: row.alg,
        status,
        created_at: row.createdAt.toISOString(),
        retired_at: row.retiredAt?.toISOString() ?? null,
      }));
      printKeys(io, json, rows);
    });
    return 0;
  },
};

export const keyCommands: Command[] = [keysRotate, keysList];
