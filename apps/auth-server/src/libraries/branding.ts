import type { CoreContext } from "../context.ts";
import { type ClientBranding, findClientBranding } from "../queries/branding.ts";

export type { ClientBranding };

/**
 * Name and logo of an enabled client for the hosted pages' header, or null. Only an https logo is kept (the CSP
 * allows https images only); anything else shows the name alone.
 */
export async function clientBranding(ctx: Pick<CoreContext, "db">, clientId: string): Promise<ClientBranding | null> {
  const branding = await findClientBranding(ctx.db, clientId);
  if (!branding) return null;
  const logo = branding.logoUrl;
  const safeLogo = logo && /^https:\/\/[^\s"'<>]+$/i.test(logo) ? logo : null;
  return { ...branding, logoUrl: safeLogo };
}
