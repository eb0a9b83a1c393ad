import { index, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { users } from "./users.ts";

/**
 * Privacy (#16): each acceptance of the terms of service and the privacy notice, with the versions accepted (null when
 * that document was not configured) and when. Append-only; the newest row is the user's current acceptance.
 */
export const termsAcceptances = pgTable(
  "terms_acceptances",
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    termsVersion: text(),
    privacyVersion: text(),
    /** `register` (the checkbox on the register page) or `sign_in` (the page shown after a new version). */
    context: text({ enum: ["register", "sign_in"] }).notNull(),
    acceptedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("terms_acceptances_user_idx").on(t.userId, t.acceptedAt)],
);
