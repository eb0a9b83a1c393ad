import { jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/** Token signing keys shared by every instance; the private JWK is encrypted with the master key (AES-256-GCM). */
export const signingKeys = pgTable("signing_keys", {
  kid: text().primaryKey(),
  alg: text({ enum: ["RS256", "ES256", "EdDSA"] }).notNull(),
  publicJwk: jsonb().notNull(),
  privateKeyEncrypted: text().notNull(),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  activatedAt: timestamp({ withTimezone: true }),
  retiredAt: timestamp({ withTimezone: true }),
});
