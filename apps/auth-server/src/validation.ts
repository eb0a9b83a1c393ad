import type { z } from "zod";
import { AppError, type FieldError } from "./errors/index.ts";

/** Field errors from a zod failure, named by their input path (`email`, `redirect_uris.0`). */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => ({
    field: issue.path.map(String).join(".") || "(body)",
    message: issue.message,
  }));
}

/** Parses untrusted input or throws VALIDATION_FAILED with per-field messages. */
export function parse<T extends z.ZodTypeAny>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input ?? {});
  if (!result.success) throw new AppError("VALIDATION_FAILED", undefined, fieldErrors(result.error));
  return result.data;
}
