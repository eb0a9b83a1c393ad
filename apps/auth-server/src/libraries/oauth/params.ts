import { z } from "zod";
import { OAuthError } from "../../errors/index.ts";

/** Longest value accepted for any single OAuth parameter; real values are far shorter (a JWT hint is ~1 KB). */
export const MAX_PARAM_LENGTH = 4096;

/** Plain string parameters a request of this endpoint reads, each with its own maximum length. */
export type ParamSpec = Record<string, number>;

export type Params<S extends ParamSpec> = { [K in keyof S]: string | undefined };

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused.
const CONTROL = /[\x00-\x1f\x7f]/;

/** One parameter: a bounded string without control characters, or absent (an empty value counts as absent). */
function paramSchema(name: string, max: number): z.ZodType<string | undefined> {
  return (
    z
      .string({ message: `The ${name} parameter must be a string.` })
      .max(max, { message: `The ${name} parameter is too long.` })
      // Control characters have no place in any OAuth parameter (RFC 6749 Appendix A), and NUL cannot be stored.
      .refine((v) => !CONTROL.test(v), { message: `The ${name} parameter contains invalid characters.` })
      .optional()
      .transform((v) => (v === "" ? undefined : v))
  );
}

/**
 * Schemas built once per spec and kept: a spec is a handful of names and lengths written in the source, so there are
 * a few dozen at most. Keyed by the spec's content, so an inline literal spec is built once too.
 */
const schemas = new Map<string, { names: string[]; schema: z.ZodType<Record<string, string | undefined>> }>();

/** The same, by spec object: the usual spec is a module constant, so its content key is computed once. */
const bySpec = new WeakMap<ParamSpec, { names: string[]; schema: z.ZodType<Record<string, string | undefined>> }>();

function schemaFor(spec: ParamSpec) {
  const known = bySpec.get(spec);
  if (known) return known;
  const key = JSON.stringify(spec);
  let entry = schemas.get(key);
  if (!entry) {
    const shape: Record<string, z.ZodType<string | undefined>> = {};
    for (const [name, max] of Object.entries(spec)) shape[name] = paramSchema(name, max);
    entry = { names: Object.keys(spec), schema: z.object(shape) as z.ZodType<Record<string, string | undefined>> };
    schemas.set(key, entry);
  }
  bySpec.set(spec, entry);
  return entry;
}

/**
 * Reads the named parameters from a parsed query string or form body. Unknown parameters are ignored (RFC 6749 3.1);
 * a parameter sent twice is invalid_request (RFC 6749 3.1: "MUST NOT be included more than once"); an empty value
 * counts as absent (RFC 6749 3.1); oversized values are invalid_request. Checked with a zod schema built from the
 * spec (once per spec), so every value that reaches a check is a string of bounded length or undefined.
 */
export function readParams<S extends ParamSpec>(
  source: unknown,
  spec: S,
  fail: (description: string) => Error = (d) => new OAuthError("invalid_request", d),
): Params<S> {
  const input = source && typeof source === "object" ? (source as Record<string, unknown>) : {};
  const { names, schema } = schemaFor(spec);
  const picked: Record<string, unknown> = {};
  // The common case, checked by hand (the schema's rules, no allocation beyond the result): every value absent or a
  // string within its bound without control characters. Anything else goes through the schema, for its message.
  let plain = true;
  for (const name of names) {
    const value = input[name];
    if (Array.isArray(value)) throw fail(`The ${name} parameter is included more than once.`);
    picked[name] = value;
    if (value === undefined) continue;
    if (typeof value !== "string" || value.length > (spec[name] as number) || CONTROL.test(value)) plain = false;
    else if (value === "") picked[name] = undefined;
  }
  if (plain) return picked as Params<S>;
  for (const name of names) picked[name] = input[name];
  const result = schema.safeParse(picked);
  if (!result.success) throw fail(result.error.issues[0]?.message ?? "The request is malformed.");
  return result.data as Params<S>;
}

/** Splits a space-delimited scope string into its distinct values, in order. */
export function splitScope(scope: string | undefined): string[] {
  if (!scope) return [];
  return [...new Set(scope.split(" ").filter(Boolean))];
}
