import type { Database } from "@tessera/db";
import { type CatalogRows, selectCatalog } from "../../queries/authorization/catalog.ts";

interface RoleEntry {
  id: string;
  /** Internal client id; null for a global role. */
  clientId: string | null;
  name: string;
  permissionIds: string[];
}

interface PermissionEntry {
  id: string;
  clientId: string;
  name: string;
}

/**
 * The authorization catalog of one instance, in memory: id → name (and back) in O(1) for roles, permissions and
 * entitlements, so issuing claims reads names without a query. Immutable once built; a newer version replaces it.
 */
export class Catalog {
  readonly roles = new Map<string, RoleEntry>();
  readonly permissions = new Map<string, PermissionEntry>();
  readonly entitlements = new Map<string, string>();
  private readonly roleIds = new Map<string, string>();
  private readonly entitlementIds = new Map<string, string>();

  constructor(
    readonly version: number,
    rows: Omit<CatalogRows, "version">,
  ) {
    for (const r of rows.roles) {
      this.roles.set(r.id, { ...r, permissionIds: [] });
      this.roleIds.set(roleKey(r.clientId, r.name), r.id);
    }
    for (const p of rows.permissions) this.permissions.set(p.id, p);
    for (const link of rows.rolePermissions) this.roles.get(link.roleId)?.permissionIds.push(link.permissionId);
    for (const e of rows.entitlements) {
      this.entitlements.set(e.id, e.name);
      this.entitlementIds.set(e.name, e.id);
    }
  }

  /** A role's id by its app (internal client id, null = global) and name. */
  roleId(clientId: string | null, name: string): string | undefined {
    return this.roleIds.get(roleKey(clientId, name));
  }

  entitlementId(name: string): string | undefined {
    return this.entitlementIds.get(name);
  }
}

const roleKey = (clientId: string | null, name: string) => `${clientId ?? ""}\u0000${name}`;

interface CatalogState {
  current: Catalog | null;
  loading: Promise<Catalog> | null;
}

/** One catalog per database handle: one per server instance (and per test app). */
const states = new WeakMap<Database, CatalogState>();

function stateOf(db: Database): CatalogState {
  let state = states.get(db);
  if (!state) {
    state = { current: null, loading: null };
    states.set(db, state);
  }
  return state;
}

/**
 * The catalog at `version` or newer: the one in memory when it is current, otherwise loaded once (concurrent callers
 * share one load). `version` comes from the token path's statement (`selectUserAuthorization`), which reads it in the
 * same snapshot as the user's assignments, so a name changed on any instance (or by the CLI) is never served stale.
 * Without a version (start-up, the account page) the catalog in memory is returned, loaded if there is none.
 */
export async function catalogAt(db: Database, version?: number): Promise<Catalog> {
  const state = stateOf(db);
  const current = state.current;
  if (current && (version === undefined || current.version >= version)) return current;
  const loaded = await reload(db, state);
  // A load already under way may have started before `version` committed: then once more (that one starts later).
  return version !== undefined && loaded.version < version ? reload(db, state) : loaded;
}

/**
 * Loads the catalog again whatever the version says: for ids missing from the one in memory, which a writer that
 * did not bump the version can cause (a catalog row inserted by some other code path).
 */
export function reloadCatalog(db: Database): Promise<Catalog> {
  return reload(db, stateOf(db));
}

function reload(db: Database, state: CatalogState): Promise<Catalog> {
  if (state.loading) return state.loading;
  const loading = selectCatalog(db)
    .then(({ version, ...rows }) => {
      const catalog = new Catalog(version, rows);
      if (!state.current || state.current.version <= version) state.current = catalog;
      return catalog;
    })
    .finally(() => {
      state.loading = null;
    });
  state.loading = loading;
  return loading;
}
