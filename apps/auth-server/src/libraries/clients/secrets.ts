import { randomBytes } from "node:crypto";
import type { Executor } from "@tessera/db";
import type { CoreContext } from "../../context.ts";
import { AppError } from "../../errors/index.ts";
import { type ClientRow, cachedActiveClient, findActiveClientByClientId } from "../../queries/clients.ts";
import { randomToken, safeEqual, sha256 } from "../crypto.ts";

/**
 * 128 random bits as 32 lowercase hex characters: public, but unguessable so client ids cannot be enumerated.
 * Hex rather than base64url so an id never starts with "-" (a CLI argument like `clients show -Xy…` would be read as
 * an option) and survives any copy-paste or case-insensitive store.
 */
export function newClientId(): string {
  return randomBytes(16).toString("hex");
}

/**
 * A new client secret: 256 bits from the CSPRNG with a `tcs_` prefix (so secret scanners can spot a leaked one).
 * Only its SHA-256 is stored: at 256 bits no offline guessing is feasible, so a slow hash would only slow /token.
 */
export function newClientSecret(): string {
  return randomToken("tcs_");
}

/** A client that may be used (not disabled), or null. Unknown or oversized ids are simply not found. */
export async function findActiveClient(db: Executor, clientId: string): Promise<ClientRow | null> {
  if (typeof clientId !== "string" || clientId.length === 0 || clientId.length > 128) return null;
  return findActiveClientByClientId(db, clientId);
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
 * A public client (token_endpoint_auth_method none) identified by its client_id alone (RFC 6749 2.3, RFC 8252 8.5):
 * it proves nothing, which is why PKCE is required of every code and its refresh tokens are bound to it (and to a
 * DPoP key when it presents one). A confidential client never passes without its secret: INVALID_CLIENT.
 */
export async function identifyPublicClient(
  deps: Pick<CoreContext, "clock"> & { db: Executor },
  clientId: string,
): Promise<ClientRow> {
  const client =
    typeof clientId === "string" && clientId.length > 0 && clientId.length <= 128
      ? await cachedActiveClient(deps.db, clientId, deps.clock.now().getTime())
      : null;
  if (client?.tokenEndpointAuthMethod !== "none") throw new AppError("INVALID_CLIENT");
  return client as ClientRow;
}
