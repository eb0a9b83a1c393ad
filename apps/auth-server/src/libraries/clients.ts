import { randomBytes } from "node:crypto";
import type { Executor } from "@tessera/db";
import { z } from "zod";
import type { CoreContext } from "../context.ts";
import { AppError, type FieldError } from "../errors/index.ts";
import {
  type ClientRow,
  cachedActiveClient,
  findActiveClientByClientId,
  findClientByClientId,
  forgetClient,
  insertClient,
  replaceClientSecret,
  selectClients,
  updateClientByClientId,
} from "../queries/clients.ts";
import { parse } from "../validation.ts";
import { audit, type RequestMeta } from "./audit.ts";
import { addSeconds } from "./clock.ts";
import { randomToken, safeEqual, sha256 } from "./crypto.ts";

export type { ClientRow } from "../queries/clients.ts";

/** What the client registry needs: a subset of `app.ctx`. */
/** Who performed an admin action, for the audit row written in the same transaction as the change. */
export interface Actor {
  actorId: string | null;
  meta: RequestMeta;
  /** Where the action came from (`api`, `cli`), recorded in the audit details. */
  via?: string;
}

export type SigningAlg = "RS256" | "ES256" | "EdDSA";

export interface ClientInput {
  name: string;
  logoUri?: string | null | undefined;
  redirectUris: string[];
  postLogoutRedirectUris?: string[] | undefined;
  backchannelLogoutUri?: string | null | undefined;
  firstParty?: boolean | undefined;
  /** Server-to-server sign-in with user credentials (trusted first-party games). Off by default. */
  directSignIn?: boolean | undefined;
  allowedScopes?: string[] | undefined;
  idTokenSignedResponseAlg?: SigningAlg | undefined;
  /** Override of ACCESS_TOKEN_TTL_SECONDS for this client (null: use the default). */
  accessTokenTtlSeconds?: number | null | undefined;
}

export type ClientUpdate = Partial<ClientInput>;

export const DEFAULT_SCOPES = ["openid", "profile", "email", "offline_access"] as const;

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);
const MAX_URI_LENGTH = 2000;
const MAX_URIS = 20;
/** RFC 6749 3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;

/**
 * Why a URI may not be registered, or null when it may. Redirect URIs are compared as exact strings at /authorize,
 * so only absolute, canonical https URIs (http only on loopback) without fragments, wildcards, user info or
 * traversal tricks are accepted; a non-canonical spelling is refused with the canonical one in the message, so what
 * is stored is exactly what a browser will send back.
 */
export function registeredUriProblem(value: string): string | null {
  if (value.length === 0) return "must not be empty";
  if (value.length > MAX_URI_LENGTH) return `must be at most ${MAX_URI_LENGTH} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused here.
  if (/[\s\x00-\x1f\x7f]/.test(value)) return "must not contain spaces or control characters";
  if (value.includes("*")) return "must not contain wildcards";
  if (value.includes("#")) return "must not contain a fragment (#)";
  if (!/^https?:\/\//i.test(value)) return "must be an absolute https:// URI";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an absolute https:// URI";
  }
  if (url.username || url.password || url.host.includes("@")) return "must not contain user info (@)";
  if (url.protocol === "http:") {
    if (!LOOPBACK_HOSTS.has(url.hostname))
      return "must use https (http is allowed only for 127.0.0.1, [::1] and localhost)";
  } else if (url.protocol !== "https:") {
    return "must use https";
  }
  const rawPath = value.replace(/^https?:\/\/[^/?#]*/i, "").split("?")[0] ?? "";
  if (/\.\.;|%2e|%2f|%5c/i.test(rawPath)) return "must not contain encoded or disguised path traversal";
  if (url.href !== value) return `must be written in canonical form: ${url.href}`;
  return null;
}

const nameSchema = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(100, "must be at most 100 characters")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a display name must not carry control characters.
  .refine((v) => !/[\x00-\x1f\x7f]/.test(v), "must not contain control characters");

const scopesSchema = z
  .array(z.string().regex(SCOPE_TOKEN, "must be a scope token (printable ASCII, no spaces)"))
  .min(1, "must not be empty")
  .max(50, "must have at most 50 scopes")
  .refine((v) => v.includes("openid"), "must include openid");

const uriList = z.array(z.string().max(MAX_URI_LENGTH)).max(MAX_URIS, `must have at most ${MAX_URIS} URIs`);
const algSchema = z.enum(["RS256", "ES256", "EdDSA"]);

const createSchema = z.strictObject({
  name: nameSchema,
  logoUri: z.string().max(MAX_URI_LENGTH).nullish(),
  redirectUris: uriList.min(1, "must have at least one redirect URI"),
  postLogoutRedirectUris: uriList.optional(),
  backchannelLogoutUri: z.string().max(MAX_URI_LENGTH).nullish(),
  firstParty: z.boolean().optional(),
  directSignIn: z.boolean().optional(),
  allowedScopes: scopesSchema.optional(),
  idTokenSignedResponseAlg: algSchema.optional(),
  accessTokenTtlSeconds: z
    .number()
    .int("must be a whole number of seconds")
    .min(30, "must be at least 30")
    .max(3600, "must be at most 3600")
    .nullish(),
});

const updateSchema = createSchema.partial().refine((v) => Object.values(v).some((x) => x !== undefined), {
  message: "nothing to update",
});

/** Wire names of the fields, used in per-field errors so API and CLI users see the names they sent. */
const WIRE_NAMES = {
  name: "name",
  redirectUris: "redirect_uris",
  postLogoutRedirectUris: "post_logout_redirect_uris",
  backchannelLogoutUri: "backchannel_logout_uri",
  logoUri: "logo_uri",
  firstParty: "first_party",
  directSignIn: "direct_sign_in",
  allowedScopes: "allowed_scopes",
  idTokenSignedResponseAlg: "id_token_signed_response_alg",
  accessTokenTtlSeconds: "access_token_ttl_seconds",
} as const;

/** parse() with field errors renamed to their wire names (`allowedScopes.1` → `allowed_scopes.1`). */
function parseInput<T extends z.ZodTypeAny>(schema: T, input: unknown): z.infer<T> {
  try {
    return parse(schema, input);
  } catch (error) {
    if (!(error instanceof AppError) || !error.fields) throw error;
    const fields = error.fields.map((f) => {
      const [head, ...rest] = f.field.split(".");
      const wire = WIRE_NAMES[head as keyof typeof WIRE_NAMES] ?? head;
      return { ...f, field: [wire, ...rest].join(".") };
    });
    throw new AppError(error.code, error.message, fields);
  }
}

function checkUris(input: ClientUpdate): void {
  const problems: FieldError[] = [];
  const check = (key: keyof typeof WIRE_NAMES, value: string, index?: number) => {
    const problem = registeredUriProblem(value);
    if (problem)
      problems.push({ field: index === undefined ? WIRE_NAMES[key] : `${WIRE_NAMES[key]}.${index}`, message: problem });
  };
  for (const [i, u] of (input.redirectUris ?? []).entries()) check("redirectUris", u, i);
  for (const [i, u] of (input.postLogoutRedirectUris ?? []).entries()) check("postLogoutRedirectUris", u, i);
  if (input.backchannelLogoutUri) check("backchannelLogoutUri", input.backchannelLogoutUri);
  if (input.logoUri) check("logoUri", input.logoUri);
  if (problems.length) throw new AppError("INVALID_REDIRECT_URI", undefined, problems);
}

const dedupe = (values: string[] | undefined) => (values ? [...new Set(values)] : undefined);

/** Row values for the validated fields that are present (undefined fields are left alone on update). */
function rowValues(input: ClientUpdate) {
  return {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.logoUri !== undefined ? { logoUrl: input.logoUri || null } : {}),
    ...(input.redirectUris !== undefined ? { redirectUris: dedupe(input.redirectUris) } : {}),
    ...(input.postLogoutRedirectUris !== undefined
      ? { postLogoutRedirectUris: dedupe(input.postLogoutRedirectUris) }
      : {}),
    ...(input.backchannelLogoutUri !== undefined ? { backchannelLogoutUri: input.backchannelLogoutUri || null } : {}),
    ...(input.firstParty !== undefined ? { firstParty: input.firstParty } : {}),
    ...(input.directSignIn !== undefined ? { directSignInEnabled: input.directSignIn } : {}),
    ...(input.allowedScopes !== undefined ? { allowedScopes: dedupe(input.allowedScopes) } : {}),
    ...(input.idTokenSignedResponseAlg !== undefined
      ? { idTokenSignedResponseAlg: input.idTokenSignedResponseAlg }
      : {}),
    ...(input.accessTokenTtlSeconds !== undefined ? { accessTokenTtlSeconds: input.accessTokenTtlSeconds } : {}),
  };
}

/**
 * 128 random bits as 32 lowercase hex characters: public, but unguessable so client ids cannot be enumerated.
 * Hex rather than base64url so an id never starts with "-" (a CLI argument like `clients show -Xy…` would be read as
 * an option) and survives any copy-paste or case-insensitive store.
 */
function newClientId(): string {
  return randomBytes(16).toString("hex");
}

/**
 * A new client secret: 256 bits from the CSPRNG with a `tcs_` prefix (so secret scanners can spot a leaked one).
 * Only its SHA-256 is stored: at 256 bits no offline guessing is feasible, so a slow hash would only slow /token.
 */
function newClientSecret(): string {
  return randomToken("tcs_");
}

function auditDetails(actor: Actor | undefined, extra: Record<string, unknown> = {}) {
  return { ...(actor?.via ? { via: actor.via } : {}), ...extra };
}

const NO_ACTOR: Actor = { actorId: null, meta: { ip: undefined, userAgent: undefined } };

/** Registers a client. The secret is returned once, here; afterwards only its hash exists. */
export async function createClient(
  deps: CoreContext,
  input: ClientInput,
  actor: Actor = NO_ACTOR,
): Promise<{ client: ClientRow; clientSecret: string }> {
  const valid = parseInput(createSchema, input);
  checkUris(valid);
  const clientSecret = newClientSecret();
  const now = deps.clock.now();
  const client = await deps.db.transaction(async (tx) => {
    const created = await insertClient(tx, {
      ...rowValues(valid),
      name: valid.name,
      redirectUris: dedupe(valid.redirectUris) ?? [],
      clientId: newClientId(),
      clientSecretHash: sha256(clientSecret),
      idTokenSignedResponseAlg: valid.idTokenSignedResponseAlg ?? deps.config.tokens.signingAlg,
      createdAt: now,
      updatedAt: now,
    });
    await audit(tx, actor.meta, {
      event: "admin.client_created",
      outcome: "success",
      actorId: actor.actorId,
      clientId: created.clientId,
      details: auditDetails(actor, { name: created.name }),
    });
    return created;
  });
  return { client, clientSecret };
}

/** A client that may be used (not disabled), or null. Unknown or oversized ids are simply not found. */
export async function findActiveClient(db: Executor, clientId: string): Promise<ClientRow | null> {
  if (typeof clientId !== "string" || clientId.length === 0 || clientId.length > 128) return null;
  return findActiveClientByClientId(db, clientId);
}

/** A client by client_id (disabled ones too), or CLIENT_NOT_FOUND. */
export async function getClient(db: Executor, clientId: string): Promise<ClientRow> {
  const client =
    typeof clientId === "string" && clientId.length > 0 && clientId.length <= 128
      ? await findClientByClientId(db, clientId)
      : null;
  if (!client) throw new AppError("CLIENT_NOT_FOUND");
  return client;
}

export async function listClients(
  db: Executor,
  options: { limit?: number | undefined; after?: string | undefined; includeDisabled?: boolean | undefined } = {},
): Promise<ClientRow[]> {
  return selectClients(db, {
    limit: Math.min(Math.max(options.limit ?? 100, 1), 500),
    after: options.after,
    includeDisabled: options.includeDisabled ?? true,
  });
}

/** A hash to compare against when the client does not exist, so unknown and known ids take the same time. */
const DUMMY_HASH = sha256("tessera: no such client");

/**
 * Checks a client's credentials: the current secret, or the previous one until its overlap expires. Disabled and
 * unknown clients fail exactly like a wrong secret. Throws INVALID_CLIENT, which OAuth endpoints answer as
 * `invalid_client`.
 */
export async function authenticateClient(
  deps: Pick<CoreContext, "clock"> & { db: Executor },
  credentials: { clientId: string; clientSecret: string },
): Promise<ClientRow> {
  const { clientId, clientSecret } = credentials;
  // Through the per-instance client cache (queries/clients.ts: changes made elsewhere apply within 5 s).
  const client =
    typeof clientId === "string" && clientId.length > 0 && clientId.length <= 128
      ? await cachedActiveClient(deps.db, clientId, deps.clock.now().getTime())
      : null;
  const presented = sha256(typeof clientSecret === "string" ? clientSecret : "");
  const matchesCurrent = safeEqual(presented, client?.clientSecretHash ?? DUMMY_HASH);
  const previousValid = Boolean(
    client?.previousSecretHash &&
      client.previousSecretExpiresAt &&
      client.previousSecretExpiresAt.getTime() > deps.clock.now().getTime(),
  );
  const matchesPrevious = safeEqual(presented, (previousValid && client?.previousSecretHash) || DUMMY_HASH);
  if (!client || typeof clientSecret !== "string" || !(matchesCurrent || (previousValid && matchesPrevious))) {
    throw new AppError("INVALID_CLIENT");
  }
  return client;
}

/**
 * Issues a new secret. The previous one stays valid for `tokens.clientSecretOverlapSeconds` so a deployment can roll
 * out the new secret without downtime; a second rotation within the overlap replaces the older previous secret.
 */
export async function rotateClientSecret(
  deps: CoreContext,
  clientId: string,
  actor: Actor = NO_ACTOR,
): Promise<{ client: ClientRow; clientSecret: string }> {
  await getClient(deps.db, clientId);
  const clientSecret = newClientSecret();
  const now = deps.clock.now();
  const overlap = deps.config.tokens.clientSecretOverlapSeconds;
  const client = await deps.db.transaction(async (tx) => {
    // The previous hash is copied inside the UPDATE itself, so two concurrent rotations cannot lose a secret.
    const updated = await replaceClientSecret(tx, clientId, {
      secretHash: sha256(clientSecret),
      previousExpiresAt: overlap > 0 ? addSeconds(now, overlap) : null,
      now,
    });
    if (!updated) throw new AppError("CLIENT_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_secret_rotated",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: auditDetails(actor, { previousValidUntil: updated.previousSecretExpiresAt?.toISOString() ?? null }),
    });
    return updated;
  });
  forgetClient(deps.db, clientId);
  return { client, clientSecret };
}

/** Changes the given fields, validated like on creation. */
export async function updateClient(
  deps: CoreContext,
  clientId: string,
  patch: ClientUpdate,
  actor: Actor = NO_ACTOR,
): Promise<ClientRow> {
  const valid = parseInput(updateSchema, patch);
  checkUris(valid);
  await getClient(deps.db, clientId);
  const result = await deps.db.transaction(async (tx) => {
    const updated = await updateClientByClientId(tx, clientId, { ...rowValues(valid), updatedAt: deps.clock.now() });
    if (!updated) throw new AppError("CLIENT_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_updated",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: auditDetails(actor, {
        fields: Object.keys(valid).filter((k) => (valid as ClientUpdate)[k as keyof ClientUpdate] !== undefined),
      }),
    });
    return updated;
  });
  forgetClient(deps.db, clientId);
  return result;
}

/**
 * Disables a client: it can no longer authenticate, start sign-ins or refresh (checked on every use). Idempotent:
 * disabling a disabled client keeps the original time.
 */
export async function disableClient(deps: CoreContext, clientId: string, actor: Actor = NO_ACTOR): Promise<ClientRow> {
  const existing = await getClient(deps.db, clientId);
  if (existing.disabledAt) return existing;
  const now = deps.clock.now();
  const result = await deps.db.transaction(async (tx) => {
    const updated = await updateClientByClientId(tx, clientId, { disabledAt: now, updatedAt: now });
    if (!updated) throw new AppError("CLIENT_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_disabled",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: auditDetails(actor),
    });
    return updated;
  });
  forgetClient(deps.db, clientId);
  return result;
}

/** Re-enables a disabled client. Idempotent. Its old refresh tokens stay bound to their sessions' expiry. */
export async function enableClient(deps: CoreContext, clientId: string, actor: Actor = NO_ACTOR): Promise<ClientRow> {
  const existing = await getClient(deps.db, clientId);
  if (!existing.disabledAt) return existing;
  const now = deps.clock.now();
  const result = await deps.db.transaction(async (tx) => {
    const updated = await updateClientByClientId(tx, clientId, { disabledAt: null, updatedAt: now });
    if (!updated) throw new AppError("CLIENT_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.client_enabled",
      outcome: "success",
      actorId: actor.actorId,
      clientId,
      details: auditDetails(actor),
    });
    return updated;
  });
  forgetClient(deps.db, clientId);
  return result;
}

/** The public shape of a client (RFC 7591 metadata names), for the admin API and the CLI's --json. */
export interface ClientView {
  client_id: string;
  client_secret?: string;
  name: string;
  logo_uri: string | null;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri: string | null;
  first_party: boolean;
  direct_sign_in: boolean;
  allowed_scopes: string[];
  grant_types: string[];
  id_token_signed_response_alg: string;
  /** null: the server default (ACCESS_TOKEN_TTL_SECONDS). */
  access_token_ttl_seconds: number | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
  disabled_at: string | null;
}

export function clientView(client: ClientRow, clientSecret?: string): ClientView {
  return {
    client_id: client.clientId,
    ...(clientSecret ? { client_secret: clientSecret } : {}),
    name: client.name,
    logo_uri: client.logoUrl,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    backchannel_logout_uri: client.backchannelLogoutUri,
    first_party: client.firstParty,
    direct_sign_in: client.directSignInEnabled,
    allowed_scopes: client.allowedScopes,
    grant_types: client.grantTypes,
    id_token_signed_response_alg: client.idTokenSignedResponseAlg,
    access_token_ttl_seconds: client.accessTokenTtlSeconds,
    previous_secret_expires_at: client.previousSecretExpiresAt?.toISOString() ?? null,
    created_at: client.createdAt.toISOString(),
    updated_at: client.updatedAt.toISOString(),
    disabled_at: client.disabledAt?.toISOString() ?? null,
  };
}
