import { index, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { clients } from "./clients.ts";
import { users } from "./users.ts";

/**
 * What a user approved for a third-party client: the scope set, remembered so the next sign-in with the same (or a
 * smaller) scope set does not ask again and `prompt=none` works. One row per user and client; a wider request asks
 * again and, when approved, widens the row. Revoking deletes the row (and ends that client's refresh tokens).
 */
export const consents = pgTable(
  "consents",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    clientId: uuid()
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    scopes: text().array().notNull(),
    grantedAt: timestamp({ withTimezone: true }).notNull(),
    updatedAt: timestamp({ withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex("consents_user_client_key").on(t.userId, t.clientId),
    index("consents_client_idx").on(t.clientId),
  ],
);
