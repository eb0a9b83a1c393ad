import { appendFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { watchAnswers } from "../../../test-support/contract-registry.ts";
import { build as buildApp } from "../src/app.ts";
import { errorCatalog } from "../src/errors/catalog.ts";
import { OPERATIONS } from "../src/http/openapi.ts";
import { RESPONSE_SCHEMAS, type ResponseSchemaName } from "../src/http/openapi-responses.ts";

/**
 * /openapi.json as a contract the whole test suite checks: every answer a test provokes from a documented operation
 * must be one the document lists for it — a success status it names, the body schema it names for that status and
 * media type (valid, and with no member the schema does not name, at any depth), and for errors the catalog code
 * under that status; and a JSON request body the endpoint accepted must be valid by the request body schema the
 * document gives. Apps built with `build` below (or buildTestApp, which uses it) are watched; the setup file every
 * test project loads (test-support/contract-setup.ts) fails the test file on what they answered undocumented.
 */

/** src/app.ts's build, with the app's answers checked against its /openapi.json (see above). */
export async function build(...args: Parameters<typeof buildApp>): ReturnType<typeof buildApp> {
  const app = await buildApp(...args);
  watchContract(app);
  return app;
}

type Responses = Record<
  string,
  { "x-error-codes"?: string[]; content?: Record<string, { schema?: { $ref?: string } }> }
>;
type Doc = { paths?: Record<string, Record<string, { operationId?: string; responses?: Responses }>> };

/**
 * What each route answered during a test file: success statuses, the catalog code of each error (`error.code` of the
 * JSON shape, `error` of the OAuth one), by "METHOD /template"; and every success body that did not match the schema
 * the document names for it.
 */
interface Answered {
  successes: Map<string, Set<number>>;
  errors: Map<string, Set<string>>;
  bodies: Set<string>;
}

function operationOf(doc: Doc, key: string) {
  const [method = "", url = ""] = key.split(" ");
  const operation = doc.paths?.[url.replace(/:([A-Za-z0-9_]+)/g, "{$1}")]?.[method.toLowerCase()];
  // Only operations the document describes (http/openapi.ts OPERATIONS): not hosted pages or test-only routes.
  return operation?.operationId ? operation : undefined;
}

/** Records what each documented operation of `app` answers, to be judged when the test file ends. */
export function watchContract(app: FastifyInstance): void {
  const answered: Answered = { successes: new Map(), errors: new Map(), bodies: new Set() };
  let doc: Doc | undefined;
  watchAnswers(() => (doc ? undocumentedAnswers(doc, answered) : []));
  app.addHook("onSend", async (request, reply, payload) => {
    const url = request.routeOptions.url;
    if (!url) return payload;
    doc ??= app.swagger() as Doc;
    const key = `${request.method} ${url}`;
    if (reply.statusCode < 400) {
      answered.successes.set(key, (answered.successes.get(key) ?? new Set()).add(reply.statusCode));
      // A request the endpoint accepted must be one the document's request body schema accepts.
      const documentedBody = OPERATIONS[key]?.body;
      if (documentedBody instanceof z.ZodType && /^application\/json\b/.test(request.headers["content-type"] ?? "")) {
        const parsed = documentedBody.safeParse(request.body);
        if (!parsed.success) {
          const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
          answered.bodies.add(`${key} accepted a request body the document refuses: ${problems}`);
        }
      }
      // A JSON media type: application/json, or a +json one (application/jwk-set+json).
      const mediaType =
        String(reply.getHeader("content-type") ?? "")
          .split(";")[0]
          ?.trim() ?? "";
      if (typeof payload === "string" && /^application\/([a-z0-9.-]+\+)?json$/.test(mediaType)) {
        const ref = operationOf(doc, key)?.responses?.[String(reply.statusCode)]?.content?.[mediaType]?.schema?.$ref;
        const name = ref?.replace("#/components/schemas/", "") as ResponseSchemaName | undefined;
        if (!name && operationOf(doc, key)?.responses?.[String(reply.statusCode)]) {
          answered.bodies.add(
            `${key} answered ${reply.statusCode} with a ${mediaType} body the document does not describe`,
          );
        } else if (name && name in RESPONSE_SCHEMAS) {
          // TESSERA_CONTRACT_LOG=<file>: which documented bodies the run checked (to find ones no test provokes).
          if (process.env.TESSERA_CONTRACT_LOG) appendFileSync(process.env.TESSERA_CONTRACT_LOG, `${name} ${key}\n`);
          for (const problem of bodyProblems(RESPONSE_SCHEMAS[name], JSON.parse(payload))) {
            answered.bodies.add(`${key} answered ${reply.statusCode} with a body not as ${name} says: ${problem}`);
          }
        }
      }
    } else if (typeof payload === "string" && payload.startsWith("{")) {
      try {
        const body = JSON.parse(payload) as { error?: string | { code?: string } };
        const code = typeof body.error === "string" ? body.error : body.error?.code;
        if (code) answered.errors.set(key, (answered.errors.get(key) ?? new Set()).add(`${reply.statusCode} ${code}`));
      } catch {
        // not JSON: not an API error
      }
    }
    return payload;
  });
}

/** Answers of documented operations that /openapi.json does not describe for them. */
function undocumentedAnswers(doc: Doc, answered: Answered): string[] {
  const out: string[] = [...answered.bodies];
  for (const [key, statuses] of answered.successes) {
    const responses = operationOf(doc, key)?.responses;
    if (!responses) continue;
    for (const status of statuses) if (!responses[String(status)]) out.push(`${key} answered ${status}`);
  }
  for (const [key, answers] of answered.errors) {
    const responses = operationOf(doc, key)?.responses;
    if (!responses) continue;
    for (const answer of answers) {
      const [status = "", code = ""] = answer.split(" ");
      const listed = responses[status]?.["x-error-codes"] ?? [];
      // An OAuth endpoint answers a catalog code by its RFC name (errors/catalog.ts `oauth`: DATABASE_UNAVAILABLE is
      // temporarily_unavailable there).
      const oauthNames = listed.map((c) => (errorCatalog as Record<string, { oauth?: string }>)[c]?.oauth);
      if (!listed.includes(code) && !oauthNames.includes(code)) out.push(`${key} answered ${status} ${code}`);
    }
  }
  return out;
}

/**
 * Why a body is not as the schema says: zod's issues, then every member (at any depth) the schema does not name. The
 * schemas are loose objects (clients must ignore members they do not know), so a member added to an answer without
 * the document passes zod and is caught here.
 */
export function bodyProblems(schema: z.ZodType, body: unknown): string[] {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    return parsed.error.issues.map((i) => {
      const path = i.path.map((p) => (typeof p === "number" ? "[]" : `.${String(p)}`)).join("");
      return `${path.replace(/^\./, "") || "(body)"}: ${i.message}`;
    });
  }
  return unnamedMembers(schema, body, "").map((path) => `${path}: not in the document`);
}

function unnamedMembers(schema: z.ZodType, value: unknown, path: string): string[] {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault) {
    return value === undefined || value === null ? [] : unnamedMembers(schema.unwrap() as z.ZodType, value, path);
  }
  if (schema instanceof z.ZodArray) {
    return Array.isArray(value)
      ? value.flatMap((item) => unnamedMembers(schema.element as z.ZodType, item, `${path}[]`))
      : [];
  }
  if (schema instanceof z.ZodUnion) {
    // The option the value is: the first that parses.
    const option = (schema.options as z.ZodType[]).find((o) => o.safeParse(value).success);
    return option ? unnamedMembers(option, value, path) : [];
  }
  if (schema instanceof z.ZodObject && value !== null && typeof value === "object") {
    const shape = schema.shape as Record<string, z.ZodType>;
    return Object.entries(value).flatMap(([member, v]) => {
      const at = path ? `${path}.${member}` : member;
      return member in shape ? unnamedMembers(shape[member] as z.ZodType, v, at) : [at];
    });
  }
  return [];
}
