import type { AdminLevel } from "../../libraries/admin/levels.ts";

/**
 * The console's navigation: the extension point for other areas' pages (roles #11, plans #12, providers, ...). An
 * area registers its console routes under /admin/<area> and adds one entry here; the layout lists them in order.
 */
export interface ConsoleNavItem {
  href: string;
  label: string;
  /** The lowest admin level that sees the entry. */
  level: AdminLevel;
}

export const consoleNav: ConsoleNavItem[] = [
  { href: "/admin", label: "Overview", level: "support" },
  { href: "/admin/clients", label: "Clients", level: "support" },
  { href: "/admin/users", label: "Users", level: "support" },
  { href: "/admin/audit", label: "Audit log", level: "support" },
  { href: "/admin/security", label: "Security", level: "support" },
  { href: "/admin/roles", label: "Roles", level: "support" },
  { href: "/admin/plans", label: "Plans", level: "support" },
  { href: "/admin/providers", label: "Providers", level: "support" },
  { href: "/admin/webhooks", label: "Webhooks", level: "support" },
];
