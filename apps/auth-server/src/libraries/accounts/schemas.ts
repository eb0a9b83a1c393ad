import { z } from "zod";
import { LOCALES } from "../../i18n/index.ts";
import { PASSWORD_MAX_LENGTH } from "../passwords.ts";
import { normalizeEmail } from "../throttle/keys.ts";

// Input schemas shared by the pages and the JSON API, so both accept exactly the same input.

/**
 * Trimmed, Unicode NFC, lower-cased. The unique index is on lower(email) as well. Defined in throttle/keys.ts, which
 * keys accounts by this same form.
 */
export { normalizeEmail };

const email = z
  .string({ error: "Enter your email address." })
  .max(254, { error: "This email address is too long." })
  .transform(normalizeEmail)
  .pipe(z.email({ error: "Enter an email address like name@example.com." }));

/** Exactly as typed: never trimmed or truncated. The policy check happens in the library. */
const password = z
  .string({ error: "Enter your password." })
  .min(1, { error: "Enter your password." })
  .max(PASSWORD_MAX_LENGTH * 4, { error: `Use at most ${PASSWORD_MAX_LENGTH} characters.` });

const displayName = z
  .string()
  .trim()
  .max(100, { error: "Use at most 100 characters." })
  .refine((v) => !/[\p{Cc}\p{Cf}]/u.test(v), { error: "Remove the control characters from the name." })
  .transform((v) => v.normalize("NFC") || null)
  .nullable()
  .optional();

const token = z.string({ error: "The link is incomplete." }).min(1, { error: "The link is incomplete." }).max(200);

export const accountSchemas = {
  email,
  password,
  register: z.object({
    email,
    password,
    displayName,
    // #16: the terms/privacy box (a form sends "on"; JSON may send true)
    acceptTerms: z
      .union([z.boolean(), z.literal("on"), z.literal("true")])
      .optional()
      .transform((v) => v === true || v === "on" || v === "true"),
  }),
  login: z.object({ email, password }),
  forgotPassword: z.object({ email }),
  resetPassword: z.object({ token, password }),
  verifyEmail: z.object({ token }),
  changePassword: z.object({ currentPassword: password, newPassword: password }),
  changeEmail: z.object({ currentPassword: password, newEmail: email }),
  /** `locale`: the language of hosted pages and emails (en, de, es); empty follows the browser; absent keeps it. */
  profile: z.object({
    displayName,
    locale: z.union([z.enum(LOCALES, { error: "Choose a language from the list." }), z.literal("")]).optional(),
  }),
  deleteAccount: z.object({ currentPassword: password }),
  sessionId: z.object({ sessionId: z.uuid({ error: "Unknown session." }) }),
};

/** POST /api/v1/guest (client credentials may come in the body instead of Basic). */
export const guestCreateBody = z.strictObject({
  scope: z.string().max(1024).optional(),
  client_id: z.string().max(128).optional(),
  client_secret: z.string().max(512).optional(),
});

/** POST /api/v1/guest/upgrade. */
export const guestUpgradeBody = z.strictObject({ email, password });
