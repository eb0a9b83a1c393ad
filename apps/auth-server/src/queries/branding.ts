import { clients, type Executor } from "@tessera/db";
import { and, eq, isNull } from "drizzle-orm";

export interface ClientBranding {
  clientId: string;
  name: string;
  logoUrl: string | null;
  brandColor: string | null;
}

/** Name and logo of a registered, enabled client, for the hosted pages' header. */
export async function findClientBranding(db: Executor, clientId: string): Promise<ClientBranding | null> {
  const [row] = await db
    .select({
      clientId: clients.clientId,
      name: clients.name,
      logoUrl: clients.logoUrl,
      brandColor: clients.brandColor,
    })
    .from(clients)
    .where(and(eq(clients.clientId, clientId), isNull(clients.disabledAt)))
    .limit(1);
  return row ?? null;
}
