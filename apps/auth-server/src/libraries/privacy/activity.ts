import type { CoreContext } from "../../context.ts";
import { recentSecurityEvents } from "../../queries/activity.ts";

/** What the account page's "Security activity" lists, and how each kind reads. */
const LABELS: Record<string, string> = {
  "user.signed_in": "Signed in",
  "user.password_changed": "Password changed",
  "user.password_reset": "Password reset with an emailed link",
  "user.email_changed": "Email address changed",
  "mfa.enabled": "Two-step verification turned on",
  "mfa.disabled": "Two-step verification turned off",
  "mfa.recovery_codes_regenerated": "New recovery codes made",
  "user.identity_linked": "Sign-in linked",
  "user.identity_unlinked": "Sign-in unlinked",
  "user.data_exported": "Data downloaded",
};
const EVENTS = Object.keys(LABELS);
/** Sign-ins looked back over to tell a new device from a known one. */
const LOOKBACK = 200;

export interface ActivityItem {
  at: Date;
  event: string;
  label: string;
  ip: string | null;
  userAgent: string | null;
  /** A sign-in from a user agent and network (IPv4 /24, IPv6 /48) not seen in the earlier sign-ins. */
  newDevice: boolean;
}

/** The network block an address belongs to: its /24 (IPv4) or /48 (IPv6), so a new address at home is not "new". */
export function ipBlock(ip: string | null): string {
  if (!ip) return "";
  if (ip.includes(":")) return ip.toLowerCase().split(":").slice(0, 3).join(":");
  return ip.split(".").slice(0, 3).join(".");
}

/**
 * The user's recent security activity (#16), from the audit events: sign-ins (a first sign-in from a device and
 * network is marked new), password, email and two-step changes, linked sign-ins, exports. Newest first, `limit` items.
 * Events whose IP and user agent the retention sweep removed show without them.
 */
export async function securityActivity(deps: CoreContext, userId: string, limit = 15): Promise<ActivityItem[]> {
  const rows = await recentSecurityEvents(deps.db, userId, EVENTS, LOOKBACK);
  const seen = new Set<string>();
  const items: ActivityItem[] = [];
  for (const row of [...rows].reverse()) {
    if (row.outcome !== "success") continue;
    let newDevice = false;
    if (row.event === "user.signed_in" && (row.ip || row.userAgent)) {
      const key = `${row.userAgent ?? ""}|${ipBlock(row.ip)}`;
      newDevice = seen.size > 0 && !seen.has(key);
      seen.add(key);
    }
    items.push({
      at: row.at,
      event: row.event,
      label: LABELS[row.event] ?? row.event,
      ip: row.ip,
      userAgent: row.userAgent,
      newDevice,
    });
  }
  return items.reverse().slice(0, limit);
}
