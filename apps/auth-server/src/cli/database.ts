import { createDatabase, type DatabaseHandle, DataDirLockedError } from "@tessera/db";
import { type Config, loadConfig } from "../config/index.ts";
import type { CliIo } from "./types.ts";

/**
 * Opens the configured database for a CLI command, migrated. On the embedded database a running server holds the
 * data directory; opening it from a second process would corrupt it, so the lock makes this fail with a clear message.
 */
export async function withDatabase<T>(
  io: CliIo,
  fn: (database: DatabaseHandle, config: Config) => Promise<T>,
): Promise<T> {
  const config = loadConfig(io.env);
  let database: DatabaseHandle;
  try {
    database = await createDatabase({ url: config.databaseUrl, dataDir: config.dataDir, maxConnections: 2 });
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      throw new CliFailure(
        `${error.message}\nThe embedded database can only be used by one process at a time: stop the server ` +
          "(Ctrl-C), run this command, then start it again.",
        75,
      );
    }
    throw error;
  }
  try {
    await database.migrate();
    return await fn(database, config);
  } finally {
    await database.close();
  }
}

/** A failure the CLI reports as a message and an exit code, without a stack trace. */
export class CliFailure extends Error {
  override name = "CliFailure";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
