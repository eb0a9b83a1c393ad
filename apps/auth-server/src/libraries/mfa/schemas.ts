import { z } from "zod";

/** The bodies of the two-step forms and of the account API's /api/v1/mfa endpoints (the pages and the API share them). */
export const mfaSchemas = {
  code: z.object({
    code: z
      .string({ error: "Enter the code." })
      .trim()
      .min(1, { error: "Enter the code." })
      .max(32, { error: "That code is too long." }),
  }),
  /** Re-authentication before enrolment: the password, optional while the sign-in is recent. */
  reauth: z.object({
    password: z.string().max(1024).optional(),
  }),
  disable: z.object({
    password: z.string({ error: "Enter your password." }).min(1, { error: "Enter your password." }).max(1024),
    code: z.string({ error: "Enter the code." }).trim().min(1, { error: "Enter the code." }).max(32),
  }),
};
