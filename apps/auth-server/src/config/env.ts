import { readFileSync } from "node:fs";
import { z } from "zod";

/**
 * Reading the environment: every secret may also come from `NAME_FILE` (a path, as with Docker secrets). Setting both
 * is an error, because silently preferring one hides a misconfiguration.
 */
export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

export function readSecret(env: Env, name: string, problems: string[]): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct !== undefined && file !== undefined) {
    problems.push(`${name}: set either ${name} or ${name}_FILE, not both`);
    return undefined;
  }
  if (file !== undefined) {
    try {
      // Secret files usually end with a newline written by an editor or `echo`; it is never part of the secret.
      return readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (error) {
      problems.push(`${name}_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
      return undefined;
    }
  }
  return direct === "" ? undefined : direct;
}

/** Parses one variable with a zod schema, recording a problem that names the variable when it is invalid. */
export function field<T extends z.ZodTypeAny>(
  env: Env,
  name: string,
  schema: T,
  problems: string[],
  value: string | undefined = env[name],
): z.infer<T> {
  const result = schema.safeParse(value === "" ? undefined : value);
  if (!result.success) {
    const issue = result.error.issues[0];
    problems.push(`${name}: ${issue?.message ?? "invalid value"}`);
    return undefined as z.infer<T>;
  }
  return result.data;
}

export const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"], { message: "expected true or false" })
  .transform((v) => v === "true" || v === "1" || v === "yes");

export const int = (min: number, max: number) =>
  z.coerce
    .number({ message: "expected a whole number" })
    .int({ message: "expected a whole number" })
    .min(min, { message: `must be at least ${min}` })
    .max(max, { message: `must be at most ${max}` });

export const url = z.string().refine(
  (v) => {
    try {
      const u = new URL(v);
      return u.protocol === "http:" || u.protocol === "https:";
    } catch {
      return false;
    }
  },
  { message: "expected an http(s) URL" },
);
