import { parseArgs } from "node:util";
import { type AssignmentOverview, sortOverview } from "../../libraries/authorization/index.ts";
import type { DeliveryView } from "../../libraries/webhooks/deliveries.ts";
import { type ClientView, WIRE_NAMES } from "../../routes/admin/client-wire.ts";
import { clientFlags, clientsUpdateArgs, describeClient } from "../commands/clients.ts";
import { type KeyRow, keysRotateArgs, printKeys, printRotation } from "../commands/keys.ts";
import { describePlan, oneName, planCreateArgs } from "../commands/plans.ts";
import { describeProvider, providerCreateArgs } from "../commands/providers.ts";
import { describeRole, roleScope } from "../commands/roles.ts";
import { liftIpArg, printIpSuspensions, printUnlocked, throttleArgs, unlockEmailArg } from "../commands/throttle.ts";
import { printUserShow, userShowArgs } from "../commands/user-authorization.ts";
import { deliveriesArgs, printDeliveries, printWebhook, rotateArgs, webhookArgs } from "../commands/webhooks.ts";
import { CliFailure } from "../database.ts";
import { type CliIo, type Command, jsonFlagArgs, UsageError } from "../types.ts";
import { adminApi, type RemoteTarget, remoteTarget, splitRemoteFlags } from "./target.ts";

/** The remote form of a command: same arguments (minus the remote flags), acting through the admin API. */
type RemoteRun = (argv: string[], io: CliIo, target: RemoteTarget) => Promise<number>;

const print = (io: CliIo, json: boolean | undefined, view: ClientView) =>
  io.out(json ? JSON.stringify(view, null, 2) : describeClient(view));

function oneArg(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return positionals[0] as string;
}

const seg = encodeURIComponent;

const clientAction =
  (verb: "rotate-secret" | "disable" | "enable"): RemoteRun =>
  async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    const id = oneArg(positionals, "client_id");
    print(io, json, await adminApi<ClientView>(target, "POST", `/clients/${seg(id)}/${verb}`));
    return 0;
  };

/** The id of the (live) account with exactly this email, found through the admin API's search. */
async function userIdByEmail(target: RemoteTarget, email: string): Promise<string> {
  const wanted = email.trim().toLowerCase();
  const found = await adminApi<{ users: { id: string; email: string }[] }>(
    target,
    "GET",
    `/users?${new URLSearchParams({ q: wanted, limit: "200" })}`,
  );
  const user = found.users.find((u) => u.email === wanted);
  if (!user) throw new CliFailure(`No account with the email ${wanted}.`);
  return user.id;
}

const userStatus =
  (action: "disable" | "enable"): RemoteRun =>
  async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    const id = await userIdByEmail(target, oneArg(positionals, "EMAIL"));
    const result = await adminApi<{ email: string; sessions_ended?: number }>(target, "POST", `/users/${id}/${action}`);
    if (json) io.out(JSON.stringify(result, null, 2));
    else if (action === "disable") io.out(`Disabled ${result.email}; ${result.sessions_ended ?? 0} session(s) ended.`);
    else io.out(`Enabled ${result.email}; they can sign in again.`);
    return 0;
  };

/** The admin API's names for the library's provider fields (its body is snake_case). */
const PROVIDER_WIRE: Record<string, string> = {
  displayName: "display_name",
  clientId: "client_id",
  clientSecret: "client_secret",
  trustedForEmail: "trusted_for_email",
  clientIds: "client_ids",
};

type ProviderView = Parameters<typeof describeProvider>[0];
type PlanView = Parameters<typeof describePlan>[0];

const printProvider = (io: CliIo, json: boolean | undefined, view: ProviderView) =>
  io.out(json ? JSON.stringify(view, null, 2) : describeProvider(view));

const providerAction =
  (verb: "show" | "disable" | "enable"): RemoteRun =>
  async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    if (positionals.length !== 1) throw new UsageError("expected exactly one provider slug");
    const path = `/providers/${seg(positionals[0] as string)}`;
    const view =
      verb === "show"
        ? await adminApi<ProviderView>(target, "GET", path)
        : await adminApi<ProviderView>(target, "POST", `${path}/${verb}`);
    printProvider(io, json, view);
    return 0;
  };

/** Remote forms of the providers (#15) and plans (#12) commands: same arguments and output as local mode. */
const AREA_REMOTE: Record<string, RemoteRun> = {
  "providers create": async (argv, io, target) => {
    const { input, json } = providerCreateArgs(argv);
    const body = Object.fromEntries(Object.entries(input).map(([k, v]) => [PROVIDER_WIRE[k] ?? k, v]));
    printProvider(io, json, await adminApi<ProviderView>(target, "POST", "/providers", body));
    return 0;
  },
  "providers list": async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const { providers } = await adminApi<{ providers: ProviderView[] }>(target, "GET", "/providers");
    if (json) io.out(JSON.stringify({ providers }, null, 2));
    else if (providers.length === 0) io.out("No providers.");
    else
      for (const v of providers)
        io.out(`${v.slug.padEnd(16)} ${v.type.padEnd(7)} ${v.enabled ? "enabled " : "disabled"} ${v.display_name}`);
    return 0;
  },
  "providers show": providerAction("show"),
  "providers disable": providerAction("disable"),
  "providers enable": providerAction("enable"),
  "plans create": async (argv, io, target) => {
    const { input, json } = planCreateArgs(argv);
    const view = await adminApi<PlanView>(target, "POST", "/plans", input);
    io.out(json ? JSON.stringify(view, null, 2) : `Created plan:\n${describePlan(view)}`);
    return 0;
  },
  "plans list": async (argv, io, target) => {
    const all = argv.includes("--all");
    const { json, positionals } = jsonFlagArgs(argv.filter((a) => a !== "--all"));
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const query = all ? "?include_archived=true" : "";
    const { data: views } = await adminApi<{ data: PlanView[] }>(target, "GET", `/plans${query}`);
    if (json) io.out(JSON.stringify(views, null, 2));
    else if (views.length === 0) io.out("No plans.");
    else io.out(views.map(describePlan).join("\n"));
    return 0;
  },
  "plans show": async (argv, io, target) => {
    const { json, name } = oneName(argv);
    const view = await adminApi<PlanView>(target, "GET", `/plans/${seg(name)}`);
    io.out(json ? JSON.stringify(view, null, 2) : describePlan(view));
    return 0;
  },
  "plans archive": async (argv, io, target) => {
    const { json, name } = oneName(argv);
    const view = await adminApi<PlanView>(target, "POST", `/plans/${seg(name)}/archive`);
    io.out(json ? JSON.stringify(view, null, 2) : `Archived plan ${view.name}.`);
    return 0;
  },
};

type WebhookWire = Parameters<typeof printWebhook>[2];

const webhookPath = (client: string) => `/clients/${seg(client)}/webhook`;

interface DeliveryWire {
  id: string;
  client_id: string;
  user_id: string;
  event_type: string;
  state: DeliveryView["state"];
  attempts: number;
  last_error: string | null;
  created_at: string;
  next_attempt_at: string | null;
  delivered_at: string | null;
  dead_at: string | null;
}

const dateOrNull = (iso: string | null) => (iso === null ? null : new Date(iso));

/** The library's view of a delivery (what local mode prints) from the admin API's. */
const deliveryView = (d: DeliveryWire): DeliveryView => ({
  id: d.id,
  clientId: d.client_id,
  userId: d.user_id,
  eventType: d.event_type,
  state: d.state,
  attempts: d.attempts,
  lastError: d.last_error,
  createdAt: new Date(d.created_at),
  nextAttemptAt: dateOrNull(d.next_attempt_at),
  deliveredAt: dateOrNull(d.delivered_at),
  deadAt: dateOrNull(d.dead_at),
});

/** Remote forms of the webhook commands (#16): same arguments and output as local mode. */
const WEBHOOK_REMOTE: Record<string, RemoteRun> = {
  "clients webhook set": async (argv, io, target) => {
    const { values, client } = webhookArgs(argv, {
      "webhook-url": { type: "string" },
      event: { type: "string", multiple: true },
    });
    if (!values["webhook-url"]) throw new UsageError("--webhook-url is required (--url is the remote-mode server)");
    if (!(values.event as string[] | undefined)?.length) throw new UsageError("at least one --event is required");
    const body = { url: values["webhook-url"], events: values.event };
    printWebhook(io, values.json, await adminApi<WebhookWire>(target, "PUT", webhookPath(client), body));
    return 0;
  },
  "clients webhook show": async (argv, io, target) => {
    const { values, client } = webhookArgs(argv);
    printWebhook(io, values.json, await adminApi<WebhookWire>(target, "GET", webhookPath(client)));
    return 0;
  },
  "clients webhook rotate-secret": async (argv, io, target) => {
    const { values, client, overlapSeconds } = rotateArgs(argv);
    const body = overlapSeconds === undefined ? undefined : { overlap_seconds: overlapSeconds };
    const view = await adminApi<WebhookWire>(target, "POST", `${webhookPath(client)}/rotate-secret`, body);
    printWebhook(io, values.json, view);
    return 0;
  },
  "clients webhook remove": async (argv, io, target) => {
    const { values, client } = webhookArgs(argv);
    await adminApi(target, "DELETE", webhookPath(client));
    io.out(values.json ? JSON.stringify({ client_id: client, removed: true }) : `Webhook of ${client} removed.`);
    return 0;
  },
  "webhooks deliveries": async (argv, io, target) => {
    const { state, client, limit, json } = deliveriesArgs(argv);
    const query = new URLSearchParams({ limit: String(limit), ...(state ? { state } : {}) });
    if (client) query.set("client_id", client);
    const { deliveries } = await adminApi<{ deliveries: DeliveryWire[] }>(
      target,
      "GET",
      `/webhook-deliveries?${query}`,
    );
    printDeliveries(io, json, deliveries.map(deliveryView));
    return 0;
  },
  "webhooks redeliver": async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    const [id, more] = positionals;
    if (!id || more !== undefined) throw new UsageError("give exactly one DELIVERY_ID");
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new UsageError("DELIVERY_ID must be a delivery's id (a UUID)");
    await adminApi(target, "POST", `/webhook-deliveries/${seg(id)}/redeliver`);
    io.out(json ? JSON.stringify({ id, state: "pending" }) : `Delivery ${id} queued again.`);
    return 0;
  },
};

type RoleWire = Parameters<typeof describeRole>[0];

const rolesBase = (scope: string | null) => (scope === null ? "/roles" : `/clients/${seg(scope)}/roles`);

/** Every role of a scope, page by page (the admin API pages by name). */
async function allRoles(target: RemoteTarget, scope: string | null): Promise<RoleWire[]> {
  const roles: RoleWire[] = [];
  let after: string | null = null;
  do {
    const query = new URLSearchParams({ limit: "500", ...(after ? { after } : {}) });
    const page: { roles: RoleWire[]; next_after: string | null } = await adminApi(
      target,
      "GET",
      `${rolesBase(scope)}?${query}`,
    );
    roles.push(...page.roles);
    after = page.next_after;
  } while (after);
  return roles;
}

const roleOptions = {
  client: { type: "string" },
  global: { type: "boolean" },
  name: { type: "string" },
  permission: { type: "string", multiple: true },
  description: { type: "string" },
  json: { type: "boolean" },
} as const;

/** Remote forms of the roles commands (#11): same arguments and output as local mode. */
const ROLE_REMOTE: Record<string, RemoteRun> = {
  "roles create": async (argv, io, target) => {
    const { values } = parseArgs({ args: argv, options: roleOptions, strict: true });
    const scope = roleScope(values);
    if (values.name === undefined) throw new UsageError("--name is required");
    const body = {
      name: values.name,
      ...(values.description !== undefined ? { description: values.description } : {}),
      ...(values.permission ? { permissions: values.permission } : {}),
    };
    const role = await adminApi<RoleWire>(target, "POST", rolesBase(scope), body);
    io.out(values.json ? JSON.stringify(role, null, 2) : `Created role ${describeRole(role)}`);
    return 0;
  },
  "roles list": async (argv, io, target) => {
    const { values } = parseArgs({
      args: argv,
      options: { client: { type: "string" }, global: { type: "boolean" }, json: { type: "boolean" } },
      strict: true,
    });
    if (values.client !== undefined && values.global) throw new UsageError("give either --client or --global");
    if (values.client === undefined && !values.global) {
      throw new UsageError("in remote mode, give --client CLIENT_ID or --global (one list at a time)");
    }
    const roles = await allRoles(target, values.client ?? null);
    if (values.json) io.out(JSON.stringify({ roles }, null, 2));
    else io.out(roles.length ? roles.map(describeRole).join("\n") : "No roles.");
    return 0;
  },
  "roles delete": async (argv, io, target) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        client: { type: "string" },
        global: { type: "boolean" },
        name: { type: "string" },
        json: { type: "boolean" },
      },
      strict: true,
    });
    const scope = roleScope(values);
    if (values.name === undefined) throw new UsageError("--name is required");
    const role = await roleNamed(target, scope, values.name);
    const result = await adminApi<{ role: RoleWire; assignments_removed: number }>(
      target,
      "DELETE",
      `${rolesBase(scope)}/${seg(role.id)}`,
    );
    io.out(
      values.json
        ? JSON.stringify(result, null, 2)
        : `Deleted role ${describeRole(result.role)}; ${result.assignments_removed} assignment(s) removed.`,
    );
    return 0;
  },
};

/** The role of a scope with this name (ROLE_NOT_FOUND as a CLI failure otherwise). */
async function roleNamed(target: RemoteTarget, scope: string | null, name: string): Promise<RoleWire> {
  const role = (await allRoles(target, scope)).find((r) => r.name === name);
  if (!role) throw new CliFailure("No role with that name in this app. (ROLE_NOT_FOUND)");
  return role;
}

const userRoleFlags = {
  email: { type: "string" },
  client: { type: "string" },
  global: { type: "boolean" },
  role: { type: "string" },
  expires: { type: "string" },
  json: { type: "boolean" },
} as const;

function emailOf(value: string | undefined): string {
  if (value === undefined) throw new UsageError("--email is required");
  return value.trim().toLowerCase();
}

/** Every row of a user's paged list (roles or entitlements), up to the 500 local mode shows. */
async function allOf<T>(target: RemoteTarget, path: string, key: "roles" | "entitlements"): Promise<T[]> {
  const rows: T[] = [];
  let after: string | null = null;
  do {
    const query: URLSearchParams = new URLSearchParams({ limit: "500", ...(after ? { after } : {}) });
    const page: { next_after: string | null } & Partial<Record<typeof key, T[]>> = await adminApi(
      target,
      "GET",
      `${path}?${query}`,
    );
    rows.push(...(page[key] ?? []));
    after = page.next_after;
  } while (after && rows.length < 500);
  return rows.slice(0, 500);
}

/** Remote forms of a user's roles and entitlements (#11): same arguments and output as local mode. */
const USER_AUTHORIZATION_REMOTE: Record<string, RemoteRun> = {
  "users grant-role": async (argv, io, target) => {
    const { values } = parseArgs({ args: argv, options: userRoleFlags, strict: true });
    const scope = roleScope(values);
    if (values.role === undefined) throw new UsageError("--role is required");
    const email = emailOf(values.email);
    const userId = await userIdByEmail(target, email);
    const role = await roleNamed(target, scope, values.role);
    const assigned = await adminApi<{ role: string; client_id: string | null; expires_at: string | null }>(
      target,
      "POST",
      `/users/${seg(userId)}/roles`,
      { role_id: role.id, expires_at: values.expires ?? null },
    );
    io.out(
      values.json
        ? JSON.stringify(assigned, null, 2)
        : `${email} has the role ${assigned.role} in ${assigned.client_id ?? "every app"}${assigned.expires_at ? ` until ${assigned.expires_at}` : ""}.`,
    );
    return 0;
  },
  "users revoke-role": async (argv, io, target) => {
    const { values } = parseArgs({ args: argv, options: userRoleFlags, strict: true });
    if (values.expires !== undefined) throw new UsageError('unknown option "--expires"');
    const scope = roleScope(values);
    if (values.role === undefined) throw new UsageError("--role is required");
    const email = emailOf(values.email);
    const userId = await userIdByEmail(target, email);
    const role = await roleNamed(target, scope, values.role);
    const result = await adminApi(target, "DELETE", `/users/${seg(userId)}/roles/${seg(role.id)}`);
    io.out(values.json ? JSON.stringify(result, null, 2) : `${email} no longer has the role ${values.role}.`);
    return 0;
  },
  "users show": async (argv, io, target) => {
    const values = userShowArgs(argv);
    const email = emailOf(values.email);
    const id = await userIdByEmail(target, email);
    const base = `/users/${seg(id)}`;
    const overview = sortOverview({
      roles: await allOf<AssignmentOverview["roles"][number]>(target, `${base}/roles`, "roles"),
      entitlements: await allOf<AssignmentOverview["entitlements"][number]>(
        target,
        `${base}/entitlements`,
        "entitlements",
      ),
    });
    printUserShow(io, values.json, { id, email, ...overview });
    return 0;
  },
  "entitlements grant": async (argv, io, target) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        email: { type: "string" },
        name: { type: "string" },
        client: { type: "string", multiple: true },
        expires: { type: "string" },
        json: { type: "boolean" },
      },
      strict: true,
    });
    if (values.name === undefined) throw new UsageError("--name is required");
    const email = emailOf(values.email);
    const userId = await userIdByEmail(target, email);
    const grant = await adminApi<{ name: string; client_ids: string[] | null; expires_at: string | null }>(
      target,
      "POST",
      `/users/${seg(userId)}/entitlements`,
      { name: values.name, client_ids: values.client ?? null, expires_at: values.expires ?? null },
    );
    io.out(
      values.json
        ? JSON.stringify(grant, null, 2)
        : `${email} owns ${grant.name} in ${grant.client_ids ? grant.client_ids.join(", ") : "every app"}${grant.expires_at ? ` until ${grant.expires_at}` : ""}.`,
    );
    return 0;
  },
  "entitlements revoke": async (argv, io, target) => {
    const { values } = parseArgs({
      args: argv,
      options: { email: { type: "string" }, name: { type: "string" }, json: { type: "boolean" } },
      strict: true,
    });
    if (values.name === undefined) throw new UsageError("--name is required");
    const email = emailOf(values.email);
    const userId = await userIdByEmail(target, email);
    const result = await adminApi(target, "DELETE", `/users/${seg(userId)}/entitlements/${seg(values.name)}`);
    io.out(
      values.json
        ? JSON.stringify(result, null, 2)
        : `Removed the admin grant of ${values.name} from ${email} (grants from purchases, if any, remain).`,
    );
    return 0;
  },
};

/** Remote forms of the signing-key and throttle commands (#14): same arguments and output as local mode. */
const SECURITY_REMOTE: Record<string, RemoteRun> = {
  "keys list": async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const { signing_keys } = await adminApi<{ signing_keys: KeyRow[] }>(target, "GET", "/signing-keys");
    printKeys(
      io,
      json,
      signing_keys.map((k) => ({
        kid: k.kid,
        alg: k.alg,
        status: k.status,
        created_at: k.created_at,
        retired_at: k.retired_at,
      })),
    );
    return 0;
  },
  "keys rotate": async (argv, io, target) => {
    const { alg, json } = keysRotateArgs(argv);
    const rotated = await adminApi<{ kid: string; alg: string; retired: string[]; published_for_seconds: number }>(
      target,
      "POST",
      "/signing-keys/rotate",
      alg ? { alg } : {},
    );
    printRotation(io, json, {
      active: { kid: rotated.kid, alg: rotated.alg },
      retired: rotated.retired,
      publishedForSeconds: rotated.published_for_seconds,
    });
    return 0;
  },
  "throttle ips": async (argv, io, target) => {
    const { json } = throttleArgs(argv, 0);
    const { ip_suspensions } = await adminApi<{
      ip_suspensions: { ip: string; suspended_until: string | null; suspensions: number }[];
    }>(target, "GET", "/ip-suspensions?limit=500");
    printIpSuspensions(
      io,
      json,
      ip_suspensions.map((s) => ({ ip: s.ip, suspendedUntil: s.suspended_until, suspensions: s.suspensions })),
    );
    return 0;
  },
  "throttle lift-ip": async (argv, io, target) => {
    const ip = liftIpArg(argv);
    try {
      await adminApi(target, "DELETE", `/ip-suspensions/${seg(ip)}`);
    } catch (error) {
      // The server's NOT_FOUND, in local mode's words.
      if (error instanceof CliFailure && error.message.endsWith("(NOT_FOUND)")) {
        throw new CliFailure(`${ip} is not suspended.`);
      }
      throw error;
    }
    io.out(`Lifted the suspension of ${ip}.`);
    return 0;
  },
  "throttle unlock": async (argv, io, target) => {
    const email = unlockEmailArg(argv);
    const answer = await adminApi<{ cleared: boolean }>(target, "POST", "/account-locks/unlock", { email });
    printUnlocked(io, email, answer.cleared);
    return 0;
  },
};

/** Commands that work against a running server, by name. Anything else refuses --url with a usage error. */
export const REMOTE: Record<string, RemoteRun> = {
  "clients list": async (argv, io, target) => {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { active: { type: "boolean" }, json: { type: "boolean" } },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const views: ClientView[] = [];
    let after: string | null = null;
    do {
      const query = new URLSearchParams({ limit: "500", include_disabled: values.active ? "false" : "true" });
      if (after) query.set("after", after);
      const page: { clients: ClientView[]; next_after: string | null } = await adminApi(
        target,
        "GET",
        `/clients?${query}`,
      );
      views.push(...page.clients);
      after = page.next_after;
    } while (after);
    if (values.json) io.out(JSON.stringify(views, null, 2));
    else if (views.length === 0) io.out("No clients yet.");
    else for (const v of views) io.out(`${v.client_id}  ${v.disabled_at ? "disabled" : "active  "}  ${v.name}`);
    return 0;
  },
  "clients show": async (argv, io, target) => {
    const { json, positionals } = jsonFlagArgs(argv);
    print(io, json, await adminApi<ClientView>(target, "GET", `/clients/${seg(oneArg(positionals, "client_id"))}`));
    return 0;
  },
  "clients create": async (argv, io, target) => {
    const { values, positionals } = parseArgs({
      args: argv,
      options: clientFlags,
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.name) throw new UsageError("--name is required");
    if (!values["redirect-uri"]?.length) throw new UsageError("at least one --redirect-uri is required");
    const body = Object.fromEntries(
      Object.entries({
        name: values.name,
        redirect_uris: values["redirect-uri"],
        post_logout_redirect_uris: values["post-logout-redirect-uri"],
        backchannel_logout_uri: values["backchannel-logout-uri"],
        logo_uri: values["logo-uri"],
        first_party: values["first-party"] ?? false,
        direct_sign_in: values["direct-sign-in"] ?? false,
        allowed_scopes: values.scope,
        id_token_signed_response_alg: values.alg,
        access_token_ttl_seconds: values["access-token-ttl"] ? Number(values["access-token-ttl"]) : undefined,
      }).filter(([, v]) => v !== undefined),
    );
    print(io, values.json, await adminApi<ClientView>(target, "POST", "/clients", body));
    return 0;
  },
  "clients update": async (argv, io, target) => {
    const { clientId, patch, json } = clientsUpdateArgs(argv);
    // The library's patch under the admin API's names (absent fields are left as they are).
    const body = Object.fromEntries(
      Object.entries(patch)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [WIRE_NAMES[k as keyof typeof WIRE_NAMES], v]),
    );
    print(io, json, await adminApi<ClientView>(target, "PATCH", `/clients/${seg(clientId)}`, body));
    return 0;
  },
  "clients rotate-secret": clientAction("rotate-secret"),
  "clients disable": clientAction("disable"),
  "clients enable": clientAction("enable"),
  "users disable": userStatus("disable"),
  "users enable": userStatus("enable"),
  ...AREA_REMOTE,
  ...WEBHOOK_REMOTE,
  ...ROLE_REMOTE,
  ...USER_AUTHORIZATION_REMOTE,
  ...SECURITY_REMOTE,
};

/**
 * Wraps every command so `--url`/`--api-key` (or TESSERA_URL) run its remote form, and a command without one says so
 * instead of silently opening the local database.
 */
export function withRemoteMode(commands: Command[]): Command[] {
  return commands.map((command) => ({
    ...command,
    usage: REMOTE[command.name]
      ? `${command.usage}\n  remote: [--url BASE --api-key KEY|--api-key-file PATH]`
      : command.usage,
    async run(argv, io) {
      const { rest, flags } = splitRemoteFlags(argv);
      const target = remoteTarget(flags, io);
      if (!target) return command.run(rest, io);
      const remote = REMOTE[command.name];
      if (!remote) throw new UsageError(`"${command.name}" works on the local database only; it does not take --url`);
      return remote(rest, io, target);
    },
  }));
}
