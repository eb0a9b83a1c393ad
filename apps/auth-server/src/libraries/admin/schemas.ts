import { z } from "zod";

/** Bodies of admin API actions the document describes (routes/admin parse them; http/openapi.ts documents them). */

/** POST /admin/api/v1/signing-keys/rotate: the algorithm (the configured one when left out). */
export const signingKeyRotateBody = z.strictObject({ alg: z.enum(["RS256", "ES256", "EdDSA"]).optional() }).optional();

/** POST /admin/api/v1/account-locks/unlock: by email (the lock's key is an HMAC the caller cannot compute). */
export const unlockBody = z.strictObject({ email: z.string().trim().min(3).max(254).includes("@") });

/** POST /admin/api/v1/users/:id/sessions/end: every session, or the one named. */
export const endSessionsBody = z.strictObject({ session_id: z.string().max(64).optional() }).optional();

/** PUT /admin/api/v1/users/:id/admin-level. */
export const levelBody = z.strictObject({ level: z.enum(["admin", "support", "none"]) });
