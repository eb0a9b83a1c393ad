import { index, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * DPoP (RFC 9449) state. A refresh-token chain bound to a key: every token of the chain (chain id, see the auth
 * server's tokens.ts) needs a proof signed by that key. Kept beside the token rows so rotation is untouched.
 */
export const dpopBindings = pgTable("dpop_bindings", {
  chainId: uuid().primaryKey(),
  /** RFC 7638 SHA-256 thumbprint of the proof key (base64url). */
  jkt: text().notNull(),
  createdAt: timestamp({ withTimezone: true }).notNull(),
});

/** Proof ids seen, each refused a second time until it expires (RFC 9449 11.1); swept after `expiresAt`. */
export const dpopProofs = pgTable(
  "dpop_proofs",
  {
    /** SHA-256 of the proof's jti and its key thumbprint. */
    jtiHash: text().primaryKey(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
  },
  (t) => [index("dpop_proofs_expires_idx").on(t.expiresAt)],
);
