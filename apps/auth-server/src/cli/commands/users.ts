import { systemClock } from "../../libraries/clock.ts";
import { normalizeEmail } from "../../libraries/throttle/keys.ts";
import { disableUser, enableUser } from "../../libraries/user-status.ts";
import { findUserByEmail, type UserRow } from "../../queries/users.ts";
import { CliFailure, withDatabase } from "../database.ts";
import { type Command, jsonFlagArgs, UsageError } from "../types.ts";
import { CLI_ACTOR, runAction } from "./clients.ts";

const view = (user: UserRow) => ({
  id: user.id,
  email: user.email,
  disabled_at: user.disabledAt?.toISOString() ?? null,
});

/** `users disable|enable EMAIL`: the same library calls as the admin API, audited with the CLI as the actor. */
function userStatusCommand(action: "disable" | "enable", summary: string): Command {
  return {
    name: `users ${action}`,
    summary,
    usage: `tessera users ${action} EMAIL [--json]`,
    async run(argv, io) {
      const { json, positionals } = jsonFlagArgs(argv);
      if (positionals.length !== 1) throw new UsageError("expected exactly one EMAIL");
      const email = normalizeEmail(positionals[0] as string);
      await withDatabase(io, async (database, config) => {
        const deps = { db: database.db, clock: systemClock, config };
        const user = await findUserByEmail(database.db, email);
        if (!user || user.deletedAt) throw new CliFailure(`No account with the email ${email}.`);
        if (action === "disable") {
          const { user: disabled, sessionsEnded } = await runAction(() => disableUser(deps, user.id, CLI_ACTOR));
          if (json) io.out(JSON.stringify({ ...view(disabled), sessions_ended: sessionsEnded }, null, 2));
          else io.out(`Disabled ${disabled.email}; ${sessionsEnded} session(s) ended, every app of them signed out.`);
        } else {
          const enabled = await runAction(() => enableUser(deps, user.id, CLI_ACTOR));
          if (json) io.out(JSON.stringify(view(enabled), null, 2));
          else io.out(`Enabled ${enabled.email}; they can sign in again.`);
        }
      });
      return 0;
    },
  };
}

export const usersDisable = userStatusCommand(
  "disable",
  "Disable an account: it can no longer sign in, and every session of it ends in every app.",
);
export const usersEnable = userStatusCommand("enable", "Enable a disabled account again (it signs in anew).");
