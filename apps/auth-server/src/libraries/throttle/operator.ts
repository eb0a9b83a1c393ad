import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  deleteAccountThrottleRow,
  type IpSuspensionRow,
  liftIpSuspension as liftIpSuspensionRow,
  listActiveIpSuspensions,
} from "../../queries/throttle.ts";
import { findUserByEmail } from "../../queries/users.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { accountKey, normalizeEmail, secondFactorKey, throttleIp } from "./keys.ts";

/** What operators do with the throttling state (the admin API and `tessera throttle`). */

/**
 * Operator action: ends an account's lock and forgets its failures (password and, when the account exists, second
 * factor), audited. Returns whether anything was there to clear.
 */
export async function unlockAccount(
  deps: CoreContext,
  meta: RequestMeta,
  input: { email: string; actorId?: string | null | undefined },
): Promise<boolean> {
  const email = normalizeEmail(input.email);
  const user = await findUserByEmail(deps.db, email);
  const keys = [accountKey(deps.config, email), ...(user ? [secondFactorKey(deps.config, user.id)] : [])];
  return deps.db.transaction(async (tx) => {
    let cleared = false;
    for (const key of keys) cleared = (await deleteAccountThrottleRow(tx, key)) || cleared;
    await audit(tx, meta, {
      event: "throttle.account_unlocked",
      outcome: "success",
      actorId: input.actorId,
      userId: user?.id ?? null,
      details: { cleared },
    });
    return cleared;
  });
}

export interface IpSuspensionView {
  ip: string;
  /** null once lifted. */
  suspendedUntil: string | null;
  suspensions: number;
}

const view = (row: IpSuspensionRow): IpSuspensionView => ({
  ip: row.ip,
  suspendedUntil: row.suspendedUntil?.toISOString() ?? null,
  suspensions: row.suspensions,
});

export async function listIpSuspensions(deps: CoreContext, limit = 100): Promise<IpSuspensionView[]> {
  return (await listActiveIpSuspensions(deps.db, deps.clock.now(), limit)).map(view);
}

/** Admin: lifts a live suspension (NOT_FOUND when the IP is not suspended), audited with the admin as actor. */
export async function liftIpSuspension(
  deps: CoreContext,
  meta: RequestMeta,
  input: { ip: string; actorId?: string | null | undefined },
): Promise<IpSuspensionView> {
  const ip = throttleIp(input.ip);
  return deps.db.transaction(async (tx) => {
    const row = await liftIpSuspensionRow(tx, ip, deps.clock.now());
    if (!row) throw new AppError("NOT_FOUND", "That IP address is not suspended.");
    await audit(tx, meta, { event: "throttle.ip_lifted", outcome: "success", actorId: input.actorId, details: { ip } });
    return view(row);
  });
}
