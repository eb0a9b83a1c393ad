/** A unique-index refusal (SQLSTATE 23505), as postgres.js or PGlite raise it, possibly wrapped by drizzle. */
export function isUniqueViolation(error: unknown): boolean {
  return hasCode(error, "23505");
}

/** A foreign-key refusal (SQLSTATE 23503): the row referred to was deleted meanwhile. */
export function isForeignKeyViolation(error: unknown): boolean {
  return hasCode(error, "23503");
}

function hasCode(error: unknown, code: string): boolean {
  for (
    let e = error, depth = 0;
    e && typeof e === "object" && depth < 4;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    if ((e as { code?: unknown }).code === code) return true;
  }
  return false;
}
