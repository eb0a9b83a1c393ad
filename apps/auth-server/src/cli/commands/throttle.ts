import { isIP } from "node:net";
import { AppError } from "../../errors/index.ts";
import { systemClock } from "../../libraries/clock.ts";
import {
  type IpSuspensionView,
  liftIpSuspension,
  listIpSuspensions,
  unlockAccount,
} from "../../libraries/throttle/operator.ts";
import { CliFailure, withDatabase } from "../database.ts";
import { type CliIo, type Command, jsonFlagArgs, UsageError } from "../types.ts";

/** The CLI as an audit "where": no IP, a recognizable user agent. */
const CLI_META = { ip: undefined, userAgent: "tessera-cli" };

/** The throttle commands' arguments: exactly `count` positionals and --json (local and remote mode). */
export function throttleArgs(argv: string[], count: number) {
  const { json, positionals } = jsonFlagArgs(argv);
  if (positionals.length > count) throw new UsageError(`unexpected argument "${positionals[count]}"`);
  if (positionals.length < count) throw new UsageError("missing argument");
  return { json, positionals };
}

/** `throttle ips`'s output (local and remote mode). */
export function printIpSuspensions(io: CliIo, json: boolean | undefined, rows: IpSuspensionView[]): void {
  if (json) io.out(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) io.out("No IP address is suspended.");
  else for (const r of rows) io.out(`${r.ip}  until ${r.suspendedUntil}  (suspension ${r.suspensions})`);
}

/** `throttle lift-ip`'s address (local and remote mode). */
export function liftIpArg(argv: string[]): string {
  const ip = throttleArgs(argv, 1).positionals[0] ?? "";
  if (!isIP(ip)) throw new UsageError(`"${ip}" is not an IPv4 or IPv6 address`);
  return ip;
}

export const throttleIps: Command = {
  name: "throttle ips",
  summary: "List IP addresses suspended after failed sign-ins, with when each suspension ends.",
  usage: "tessera throttle ips [--json]",
  async run(argv, io) {
    const { json } = throttleArgs(argv, 0);
    await withDatabase(io, async (database, config) => {
      const rows = await listIpSuspensions({ db: database.db, clock: systemClock, config }, 500);
      printIpSuspensions(io, json, rows);
    });
    return 0;
  },
};

export const throttleLiftIp: Command = {
  name: "throttle lift-ip",
  summary: "Lift the suspension of an IP address (for IPv6, its /64) before it ends by itself.",
  usage: "tessera throttle lift-ip <ip>",
  async run(argv, io) {
    const ip = liftIpArg(argv);
    await withDatabase(io, async (database, config) => {
      try {
        await liftIpSuspension({ db: database.db, clock: systemClock, config }, CLI_META, { ip });
      } catch (error) {
        if (error instanceof AppError && error.code === "NOT_FOUND") throw new CliFailure(`${ip} is not suspended.`);
        throw error;
      }
      io.out(`Lifted the suspension of ${ip}.`);
    });
    return 0;
  },
};

/** `throttle unlock`'s one argument, an email address (local and remote mode). */
export function unlockEmailArg(argv: string[]): string {
  const { positionals } = throttleArgs(argv, 1);
  const email = positionals[0] ?? "";
  if (!email.includes("@") || email.length > 254) throw new UsageError(`"${email}" is not an email address`);
  return email;
}

export function printUnlocked(io: CliIo, email: string, cleared: boolean): void {
  io.out(cleared ? `Cleared the failed sign-ins of ${email}.` : `Nothing to clear for ${email}.`);
}

export const throttleUnlock: Command = {
  name: "throttle unlock",
  summary: "End an account's lock after failed sign-ins and forget its failures (the owner can also use a reset link).",
  usage: "tessera throttle unlock <email>",
  async run(argv, io) {
    const email = unlockEmailArg(argv);
    await withDatabase(io, async (database, config) => {
      const cleared = await unlockAccount({ db: database.db, clock: systemClock, config }, CLI_META, { email });
      printUnlocked(io, email, cleared);
    });
    return 0;
  },
};

export const throttleCommands: Command[] = [throttleIps, throttleLiftIp, throttleUnlock];
