import { withDatabase } from "../database.ts";
import type { Command } from "../types.ts";

export const dbMigrate: Command = {
  name: "db migrate",
  summary: "Apply pending database migrations (safe to run while other instances start).",
  usage: "tessera db migrate",
  async run(_argv, io) {
    await withDatabase(io, async (database) => {
      io.out(`Migrations applied (${database.describe}).`);
    });
    return 0;
  },
};
