import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { AppError } from "../../../errors/index.ts";
import { routeRateLimit } from "../../../http/rate-limit.ts";
import { AUTHORIZATION_WIRE_NAMES } from "../../../libraries/admin/wire-names.ts";
import { parse } from "../../../validation.ts";
import { requireAdmin } from "../auth.ts";

const LIBRARY_TO_WIRE = AUTHORIZATION_WIRE_NAMES;
const WIRE_TO_LIBRARY = Object.fromEntries(Object.entries(LIBRARY_TO_WIRE).map(([l, w]) => [w, l]));

/** An object body (anything else is VALIDATION_FAILED); its values are checked by the library. */
const objectBody = z.record(z.string(), z.unknown(), { error: "must be a JSON object" });

/**
 * A wire body as library input. A library name sent as is (`roleId`) is kept under a name the library refuses, so
 * only the documented wire names work.
 */
export function libraryInput(body: unknown): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parse(objectBody, body))) {
    input[WIRE_TO_LIBRARY[key] ?? (key in LIBRARY_TO_WIRE ? `(${key})` : key)] = value;
  }
  return input;
}

/** Runs a library call and renames field errors back to the wire names the caller sent. */
export async function withWireNames<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof AppError) || !error.fields) throw error;
    const fields = error.fields.map((f) => {
      const [head, ...rest] = f.field.split(".");
      return { ...f, field: [LIBRARY_TO_WIRE[head ?? ""] ?? head, ...rest].join(".") };
    });
    throw new AppError(error.code, error.message, fields, error.headers);
  }
}

const NAME_CURSOR = /^[A-Za-z0-9][A-Za-z0-9:._/-]{0,99}$/;
const UUID_CURSOR = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `?limit=&after=`: at most 500 a page (default 100); `after` is the last name (or id) of the previous page. */
export function pageQuery(cursor: "name" | "id") {
  const schema = z.strictObject({
    limit: z.coerce.number().int().min(1).max(500).optional(),
    after: z
      .string()
      .regex(cursor === "name" ? NAME_CURSOR : UUID_CURSOR, `must be the last ${cursor} of the previous page`)
      .optional(),
  });
  return (request: FastifyRequest) => {
    const query = parse(schema, request.query);
    const limit = query.limit ?? 100;
    return { limit, page: { limit: limit + 1, after: query.after } };
  };
}

/** One page of `rows` (fetched with one extra) and the cursor of the next page, if any. */
export function paged<T>(rows: T[], limit: number, cursor: (row: T) => string) {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page, next_after: rows.length > limit && last !== undefined ? cursor(last) : null };
}

/** A path parameter as a string ("" when absent). */
export const param = (request: FastifyRequest, name: string) =>
  String((request.params as Record<string, unknown>)[name] ?? "");

/**
 * The common setup of an admin plugin: the admin rate limit, admin authentication before the body is parsed, and 405
 * with Allow on every known path for the methods it does not serve.
 */
export function adminPlugin(app: FastifyInstance, allowed: Record<string, string[]>) {
  const routeConfig = { config: { rateLimit: routeRateLimit(app.ctx.config, "admin") } };
  app.addHook("preParsing", async (request, reply, payload) => {
    await requireAdmin(request, reply);
    return payload;
  });
  for (const [url, methods] of Object.entries(allowed)) {
    app.route({
      method: ["GET", "POST", "PUT", "PATCH", "DELETE"].filter((m) => !methods.includes(m)),
      url,
      ...routeConfig,
      handler: async () => {
        throw new AppError("METHOD_NOT_ALLOWED", undefined, undefined, { allow: methods.join(", ") });
      },
    });
  }
  return routeConfig;
}
