import { z } from "zod";
import { AppError, type FieldError } from "../../errors/index.ts";
import { CLIENT_WIRE_NAMES } from "../../libraries/admin/wire-names.ts";
import type { ClientInput, ClientRow } from "../../libraries/clients/index.ts";

/**
 * The admin API's wire shape of a client (RFC 7591 metadata names), used by the admin routes and the CLI's --json.
 * The library speaks its own field names; this module maps between the two.
 */

/** Wire name of every library field (libraries/admin/wire-names.ts, where the API document reads them too). */
export const WIRE_NAMES = CLIENT_WIRE_NAMES;

export type WireField = (typeof WIRE_NAMES)[keyof typeof WIRE_NAMES];

/** A wire body (already checked to have only wire fields) as library input; the library validates the values. */
export function fromWire(body: Partial<Record<WireField, unknown>>): { [K in keyof ClientInput]?: unknown } {
  const input: Record<string, unknown> = {};
  for (const [key, wire] of Object.entries(WIRE_NAMES)) if (wire in body) input[key] = body[wire];
  return input;
}

/** Per-field errors renamed to wire names (`allowedScopes.1` → `allowed_scopes.1`); other names are kept. */
export function wireFieldErrors(fields: FieldError[]): FieldError[] {
  return fields.map((f) => {
    const [head, ...rest] = f.field.split(".");
    const wire = WIRE_NAMES[head as keyof typeof WIRE_NAMES] ?? head;
    return { ...f, field: [wire, ...rest].join(".") };
  });
}

/** Runs a library call and renames the field errors it throws to wire names, so callers see the names they sent. */
export async function withWireNames<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof AppError) || !error.fields) throw error;
    throw new AppError(error.code, error.message, wireFieldErrors(error.fields), error.headers);
  }
}

/** A wire body: an object with only known wire fields (a typo is refused, not ignored); the library checks values. */
export const wireBody = z.strictObject(
  Object.fromEntries(Object.values(WIRE_NAMES).map((wire) => [wire, z.unknown().optional()])) as Record<
    WireField,
    z.ZodOptional<z.ZodUnknown>
  >,
);

/** The public shape of a client (RFC 7591 metadata names), for the admin API and the CLI's --json. */
export interface ClientView {
  client_id: string;
  client_secret?: string;
  name: string;
  logo_uri: string | null;
  /** Accent colour of the hosted pages for this client (`#rrggbb`), or null for Tessera's own. */
  brand_color: string | null;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri: string | null;
  first_party: boolean;
  direct_sign_in: boolean;
  allowed_scopes: string[];
  grant_types: string[];
  guest_accounts: boolean;
  id_token_signed_response_alg: string;
  /** null: the server default (ACCESS_TOKEN_TTL_SECONDS). */
  access_token_ttl_seconds: number | null;
  /** `none`: a public client (no secret); secret clients may use client_secret_basic or client_secret_post. */
  token_endpoint_auth_method: string;
  web_origins: string[];
  require_dpop: boolean;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
  disabled_at: string | null;
}

export function clientView(client: ClientRow, clientSecret?: string | undefined): ClientView {
  return {
    client_id: client.clientId,
    ...(clientSecret ? { client_secret: clientSecret } : {}),
    name: client.name,
    logo_uri: client.logoUrl,
    brand_color: client.brandColor,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    backchannel_logout_uri: client.backchannelLogoutUri,
    first_party: client.firstParty,
    direct_sign_in: client.directSignInEnabled,
    allowed_scopes: client.allowedScopes,
    grant_types: client.grantTypes,
    guest_accounts: client.guestAccountsEnabled,
    id_token_signed_response_alg: client.idTokenSignedResponseAlg,
    access_token_ttl_seconds: client.accessTokenTtlSeconds,
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    web_origins: client.webOrigins,
    require_dpop: client.requireDpop,
    previous_secret_expires_at: client.previousSecretExpiresAt?.toISOString() ?? null,
    created_at: client.createdAt.toISOString(),
    updated_at: client.updatedAt.toISOString(),
    disabled_at: client.disabledAt?.toISOString() ?? null,
  };
}
