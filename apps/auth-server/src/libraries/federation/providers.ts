import { z } from "zod";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import {
  findIdentityProviderBySlug,
  type IdentityProviderRow,
  insertIdentityProvider,
  listIdentityProviders,
  setIdentityProviderDisabled,
  updateIdentityProvider,
} from "../../queries/federation.ts";
import { fieldErrors } from "../../validation.ts";
import { audit, type RequestMeta } from "../audit.ts";
import { decrypt, encrypt } from "../crypto.ts";
import { PRESETS, type PresetName, STEAM_ENDPOINT } from "./presets.ts";

export type { IdentityProviderRow } from "../../queries/federation.ts";

/** Who changes a provider, for the audit row. */
export interface ProviderActor {
  actorId: string | null;
  meta: RequestMeta;
  via?: string;
}

/**
 * Slugs appear in URLs, `idp_hint` and the session's `amr` beside `fed`, so an RFC 8176 method name (or one Tessera
 * gives meaning to) may not be a slug: a provider called `otp` would otherwise pass for a second factor.
 */
const RESERVED_SLUGS = new Set(
  "face fed fpt geo hwk iris kba mca mfa otp pin pop pwd rba retina sc sms swk tel user vbm wia passkey webauthn".split(
    " ",
  ),
);

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** https, or http to a loopback host (a provider on the same machine, or a test's upstream). */
export function upstreamUrlAllowed(raw: string): boolean {
  try {
    const url = new URL(raw);
    if (url.username || url.password || url.hash) return false;
    return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.has(url.hostname));
  } catch {
    return false;
  }
}

const url = z
  .string()
  .max(2000)
  .refine(upstreamUrlAllowed, { message: "must be an https URL (http only for loopback)" });

export const providerInput = z
  .strictObject({
    slug: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{1,31}$/, "2–32 lower-case letters, digits or dashes")
      .refine((s) => !RESERVED_SLUGS.has(s), "this name is reserved"),
    type: z.enum(["oidc", "oauth2", "steam"]),
    preset: z.enum(["github", "discord", "twitch", "steam"]).optional(),
    displayName: z.string().trim().min(1).max(60).optional(),
    issuer: url.optional(),
    clientId: z.string().min(1).max(500).optional(),
    clientSecret: z.string().min(1).max(2000).optional(),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/, "not a scope value"))
      .max(30)
      .optional(),
    endpoints: z
      .strictObject({
        authorization: url.optional(),
        token: url.optional(),
        user: url.optional(),
        emails: url.optional(),
        login: url.optional(),
      })
      .optional(),
    trustedForEmail: z.boolean().optional(),
    clientIds: z
      .array(z.string().regex(/^[\x21-\x7e]{1,200}$/))
      .max(100)
      .nullable()
      .optional(),
  })
  .superRefine((v, ctx) => {
    const need = (field: keyof typeof v, message: string) => {
      if (v[field] === undefined) ctx.addIssue({ code: "custom", path: [field], message });
    };
    if (v.type === "oidc") need("issuer", "an OpenID provider needs its issuer URL");
    if (v.type === "oauth2" && (!v.preset || v.preset === "steam"))
      ctx.addIssue({ code: "custom", path: ["preset"], message: "choose github, discord or twitch" });
    if (v.type !== "steam") {
      need("clientId", "the client id registered at the provider is required");
      need("clientSecret", "the client secret registered at the provider is required");
    }
  });

export type ProviderInput = z.input<typeof providerInput>;

/** The associated data that binds a sealed secret to its provider: a ciphertext copied to another row fails. */
const aad = (slug: string) => `identity_provider:${slug}`;

/** Creates a provider (enabled). The client secret is sealed with the master key; it never leaves the server again. */
export async function createProvider(
  ctx: CoreContext,
  raw: unknown,
  actor: ProviderActor,
): Promise<IdentityProviderRow> {
  const parsed = providerInput.safeParse(raw ?? {});
  if (!parsed.success) throw new AppError("VALIDATION_FAILED", undefined, fieldErrors(parsed.error));
  const v = parsed.data;
  const preset = v.type === "oauth2" ? PRESETS[v.preset as PresetName] : undefined;
  const now = ctx.clock.now();
  return ctx.db.transaction(async (tx) => {
    const created = await insertIdentityProvider(tx, {
      slug: v.slug,
      kind: v.type,
      preset: v.type === "steam" ? "steam" : (v.preset ?? null),
      displayName: v.displayName ?? preset?.displayName ?? (v.type === "steam" ? "Steam" : v.slug),
      issuer: v.issuer ?? null,
      clientId: v.clientId ?? null,
      clientSecretEncrypted: v.clientSecret ? encrypt(ctx.config.masterKey, v.clientSecret, aad(v.slug)) : null,
      scopes: v.scopes ?? (preset ? preset.scopes : v.type === "oidc" ? ["openid", "email", "profile"] : []),
      endpoints: Object.fromEntries(Object.entries(v.endpoints ?? {}).filter(([, u]) => u !== undefined)) as Record<
        string,
        string
      >,
      trustedForEmail: v.trustedForEmail ?? false,
      clientIds: v.clientIds ?? null,
      createdAt: now,
      updatedAt: now,
    });
    if (!created) {
      throw new AppError("PROVIDER_EXISTS", undefined, [
        { field: "slug", message: "a provider with this slug exists" },
      ]);
    }
    await audit(tx, actor.meta, {
      event: "admin.provider_created",
      outcome: "success",
      actorId: actor.actorId,
      details: { via: actor.via, after: providerView(created) },
    });
    return created;
  });
}

export async function getProvider(ctx: CoreContext, slug: string): Promise<IdentityProviderRow> {
  const row = await findIdentityProviderBySlug(ctx.db, slug);
  if (!row) throw new AppError("PROVIDER_NOT_FOUND");
  return row;
}

export function listProviders(ctx: CoreContext, options: { enabledOnly?: boolean } = {}) {
  return listIdentityProviders(ctx.db, { enabledOnly: options.enabledOnly ?? false });
}

/** Disables (or enables again) a provider. Linked identities stay; a disabled provider signs nobody in. */
export async function setProviderEnabled(
  ctx: CoreContext,
  slug: string,
  enabled: boolean,
  actor: ProviderActor,
): Promise<IdentityProviderRow> {
  const before = await getProvider(ctx, slug);
  const now = ctx.clock.now();
  return ctx.db.transaction(async (tx) => {
    const after = await setIdentityProviderDisabled(tx, before.id, enabled ? null : (before.disabledAt ?? now), now);
    if (!after) throw new AppError("PROVIDER_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: enabled ? "admin.provider_enabled" : "admin.provider_disabled",
      outcome: "success",
      actorId: actor.actorId,
      details: { via: actor.via, before: providerView(before), after: providerView(after) },
    });
    return after;
  });
}

/** The upstream client secret, decrypted for a token request. */
export function providerSecret(ctx: CoreContext, provider: IdentityProviderRow): string | undefined {
  return provider.clientSecretEncrypted
    ? decrypt(ctx.config.masterKey, provider.clientSecretEncrypted, aad(provider.slug))
    : undefined;
}

/** The provider's endpoint, the admin's override first. */
export function endpointOf(provider: IdentityProviderRow, name: "authorization" | "token" | "user" | "emails") {
  const preset = PRESETS[provider.preset as PresetName] as (typeof PRESETS)[PresetName] | undefined;
  return provider.endpoints[name] ?? preset?.endpoints[name];
}

export function steamEndpoint(provider: IdentityProviderRow): string {
  return provider.endpoints.login ?? STEAM_ENDPOINT;
}

/** The wire (and audit) view of a provider: never the secret, only whether one is set. */
export function providerView(p: IdentityProviderRow) {
  return {
    slug: p.slug,
    type: p.kind,
    preset: p.preset,
    display_name: p.displayName,
    issuer: p.issuer,
    client_id: p.clientId,
    client_secret_set: p.clientSecretEncrypted !== null,
    scopes: p.scopes,
    endpoints: p.endpoints,
    trusted_for_email: p.trustedForEmail,
    client_ids: p.clientIds,
    enabled: p.disabledAt === null,
    created_at: p.createdAt.toISOString(),
    disabled_at: p.disabledAt?.toISOString() ?? null,
  };
}

/** The enabled providers whose buttons a sign-in page for this client shows (`client_ids` null = every client). */
export async function buttonsFor(
  ctx: CoreContext,
  clientId: string | undefined,
  options: { everyClient?: boolean } = {},
) {
  const rows = await listIdentityProviders(ctx.db, { enabledOnly: true });
  return rows
    .filter(
      (p) => options.everyClient || p.clientIds === null || (clientId !== undefined && p.clientIds.includes(clientId)),
    )
    .map((p) => ({ slug: p.slug, name: p.displayName }));
}

const providerUpdate = z.strictObject({
  displayName: z.string().trim().min(1).max(60).optional(),
  issuer: url.optional(),
  clientId: z.string().min(1).max(500).optional(),
  /** Write-only: a new secret replaces the sealed one; absent keeps it. */
  clientSecret: z.string().min(1).max(2000).optional(),
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/, "not a scope value"))
    .max(30)
    .optional(),
  trustedForEmail: z.boolean().optional(),
  clientIds: z
    .array(z.string().regex(/^[\x21-\x7e]{1,200}$/))
    .max(100)
    .nullable()
    .optional(),
});

/**
 * Changes a provider's settings (its slug and kind stay: identities are linked by them). The client secret is
 * write-only: a new one is sealed like at creation, and neither it nor the old one is ever shown. Audited (without
 * secrets: `providerView` only says whether one is set).
 */
export async function updateProvider(
  ctx: CoreContext,
  slug: string,
  raw: unknown,
  actor: ProviderActor,
): Promise<IdentityProviderRow> {
  const parsed = providerUpdate.safeParse(raw ?? {});
  if (!parsed.success) throw new AppError("VALIDATION_FAILED", undefined, fieldErrors(parsed.error));
  const v = parsed.data;
  const before = await getProvider(ctx, slug);
  if (v.issuer !== undefined && before.kind !== "oidc") {
    throw new AppError("VALIDATION_FAILED", undefined, [
      { field: "issuer", message: "only an OpenID provider has one" },
    ]);
  }
  const now = ctx.clock.now();
  return ctx.db.transaction(async (tx) => {
    const after = await updateIdentityProvider(
      tx,
      before.id,
      {
        ...(v.displayName !== undefined ? { displayName: v.displayName } : {}),
        ...(v.issuer !== undefined ? { issuer: v.issuer } : {}),
        ...(v.clientId !== undefined ? { clientId: v.clientId } : {}),
        ...(v.clientSecret !== undefined
          ? { clientSecretEncrypted: encrypt(ctx.config.masterKey, v.clientSecret, aad(before.slug)) }
          : {}),
        ...(v.scopes !== undefined ? { scopes: v.scopes } : {}),
        ...(v.trustedForEmail !== undefined ? { trustedForEmail: v.trustedForEmail } : {}),
        ...(v.clientIds !== undefined ? { clientIds: v.clientIds } : {}),
      },
      now,
    );
    if (!after) throw new AppError("PROVIDER_NOT_FOUND");
    await audit(tx, actor.meta, {
      event: "admin.provider_updated",
      outcome: "success",
      actorId: actor.actorId,
      details: {
        via: actor.via,
        before: providerView(before),
        after: providerView(after),
        secretReplaced: v.clientSecret !== undefined,
      },
    });
    return after;
  });
}
