import type { CoreContext } from "../context.ts";
import { type ClientBranding, findClientBranding } from "../queries/branding.ts";

export interface PageBranding extends ClientBranding {
  /** The stylesheet that gives the pages the client's colour (/assets/brand/<client>.css), when it has one. */
  colorCss: string | null;
}

const COLOR = /^#[0-9a-f]{6}$/i;

/**
 * Name, logo and colour of an enabled client for the hosted pages, or null. Only an https logo is kept (the CSP
 * allows https images only); anything else shows the name alone. Only a `#rrggbb` colour is kept, checked again here
 * although the admin API validates it: it ends up in CSS.
 */
export async function clientBranding(ctx: Pick<CoreContext, "db">, clientId: string): Promise<PageBranding | null> {
  const branding = await findClientBranding(ctx.db, clientId);
  if (!branding) return null;
  const logo = branding.logoUrl;
  const safeLogo = logo && /^https:\/\/[^\s"'<>]+$/i.test(logo) ? logo : null;
  const color = branding.brandColor && COLOR.test(branding.brandColor) ? branding.brandColor.toLowerCase() : null;
  return {
    ...branding,
    logoUrl: safeLogo,
    brandColor: color,
    // The colour in the URL makes a changed colour a new URL (the stylesheet is cached for a while).
    colorCss: color ? `/assets/brand/${encodeURIComponent(clientId)}.css?c=${color.slice(1)}` : null,
  };
}

/**
 * The stylesheet of a client's colour: CSS custom properties only, served from Tessera's origin, so the CSP stays
 * `style-src 'self'` with no inline style. The text on the accent colour is white or dark, whichever contrasts more.
 */
export function brandStylesheet(color: string): string {
  if (!COLOR.test(color)) throw new TypeError("not a #rrggbb colour");
  const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(color.slice(i, i + 2), 16) / 255) as [number, number, number];
  const linear = (c: number) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const ink = 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 ? "#ffffff" : "#1d2330";
  return `:root {\n  --accent: ${color.toLowerCase()};\n  --accent-ink: ${ink};\n}\n`;
}
