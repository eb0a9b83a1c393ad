import { parseArgs } from "node:util";
import { systemClock } from "../../libraries/clock.ts";
import {
  keyPublishWindowSeconds,
  listSigningKeys,
  rotateSigningKey,
  type SigningAlg,
} from "../../libraries/keys/index.ts";
import { withDatabase } from "../database.ts";
import { type Command, jsonFlagArgs, UsageError } from "../types.ts";

const ALGS = ["RS256", "ES256", "EdDSA"];

export const keysRotate: Command = {
  name: "keys rotate",
  summary: "Make a new signing key active; the old one stays published until the tokens it signed have expired.",
  usage: "tessera keys rotate [--alg RS256|ES256|EdDSA] [--json]",
  async run(argv, io) {
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
    await withDatabase(io, async (database, config) => {
      const deps = { db: database.db, clock: systemClock, config };
      const alg = (values.alg as SigningAlg | undefined) ?? config.tokens.signingAlg;
      const { active, retired } = await rotateSigningKey(deps, alg);
      const window = keyPublishWindowSeconds(config);
      if (values.json) {
        io.out(
          JSON.stringify(
            { active: { kid: active.kid, alg: active.alg }, retired, publishedForSeconds: window },
            null,
            2,
          ),
        );
      } else {
        io.out(`New ${active.alg} signing key ${active.kid} is active.`);
        for (const kid of retired) io.out(`Retired ${kid}: still published in the JWKS for ${window} s.`);
        io.out("Running servers pick up the new key within a minute.");
      }
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
      const rows = keys.map(({ row, status }) => ({
        kid: row.kid,
        alg: row.alg,
        status,
        created_at: row.createdAt.toISOString(),
        retired_at: row.retiredAt?.toISOString() ?? null,
      }));
      if (json) io.out(JSON.stringify(rows, null, 2));
      else if (rows.length === 0) io.out("No signing keys yet: one is created when the server first starts.");
      else for (const r of rows) io.out(`${r.kid}  ${r.alg.padEnd(5)}  ${r.status.padEnd(7)}  created ${r.created_at}`);
    });
    return 0;
  },
};

export const keyCommands: Command[] = [keysRotate, keysList];
