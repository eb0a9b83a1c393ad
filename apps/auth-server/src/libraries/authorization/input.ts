import { z } from "zod";
import type { Actor } from "../clients/index.ts";

/**
 * Names of roles, permissions and entitlements: 1-100 characters, starting with a letter or digit, then letters,
 * digits and `: . _ - /` (`chat:mute`, `season-pass-3`, `billing/refunds`). No spaces or control characters, so a
 * name is safe in a token claim, a log line and a CLI argument as is.
 */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9:._/-]{0,99}$/;
export const MAX_NAMES = 100;
/** Apps one entitlement grant may be limited to. */
export const MAX_CLIENT_LIMITS = 50;

export const nameSchema = z
  .string({ error: "must be a string" })
  .regex(NAME, "must be 1-100 letters, digits or : . _ - / (starting with a letter or digit)");
export const descriptionSchema = z
  .string({ error: "must be a string" })
  .max(500, "must be at most 500 characters")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a description may hold tabs and line breaks, nothing else.
  .refine((v) => !/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(v), "must not contain control characters");
export const namesSchema = z
  .array(nameSchema, { error: "must be a list of names" })
  .max(MAX_NAMES, `must have at most ${MAX_NAMES} names`);
const clientIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "must be a client_id");
/** An expiry: an ISO 8601 time with an offset (`2027-01-01T00:00:00Z`), or null for none. */
export const expirySchema = z.iso
  .datetime({ offset: true, error: "must be an ISO 8601 time with an offset, e.g. 2027-01-01T00:00:00Z" })
  .nullish();

export const roleCreateSchema = z.strictObject({
  name: nameSchema,
  description: descriptionSchema.optional(),
  permissions: namesSchema.optional(),
});
export const roleUpdateSchema = roleCreateSchema
  .partial()
  .refine((v) => Object.values(v).some((x) => x !== undefined), { message: "nothing to update" });
export const permissionCreateSchema = z.strictObject({ name: nameSchema, description: descriptionSchema.optional() });
export const permissionUpdateSchema = permissionCreateSchema
  .partial()
  .refine((v) => Object.values(v).some((x) => x !== undefined), { message: "nothing to update" });
export const assignSchema = z.strictObject({ roleId: z.string(), expiresAt: expirySchema });
export const grantSchema = z.strictObject({
  name: nameSchema,
  /** Public client_ids; absent or null = every app. */
  clientIds: z
    .array(clientIdSchema)
    .min(1, "must name at least one app (leave it out for every app)")
    .max(MAX_CLIENT_LIMITS, `must have at most ${MAX_CLIENT_LIMITS} apps`)
    .nullish(),
  expiresAt: expirySchema,
});

/** A page request: at most `limit` rows after the cursor `after`. */
export interface Page {
  limit: number;
  after?: string | undefined;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Audit details every authorization change carries: where it came from, what it was before and after. */
export function changeDetails(actor: Actor, before: unknown, after: unknown, extra: Record<string, unknown> = {}) {
  return { ...(actor.via ? { via: actor.via } : {}), ...extra, before, after };
}
