import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  createProvider,
  getProvider,
  listProviders,
  providerView,
  setProviderEnabled,
  updateProvider,
} from "../../libraries/federation/providers.ts";
import { callbackUrl } from "../../libraries/federation/upstream.ts";
import { seeOther } from "../pages/render.ts";
import { type ConsoleAdmin, consoleAccess } from "./guard.ts";
import {
  actionErrorOf,
  field,
  formConfig,
  listField,
  noticeFrom,
  pageConfig,
  renderConsole,
  renderWithError,
  type ShownError,
} from "./render.ts";

const slugOf = (request: FastifyRequest) => String((request.params as { slug?: string }).slug ?? "");
const pageOf = (slug: string) => `/admin/providers/${encodeURIComponent(slug)}`;

/** The kinds the create form offers: a preset, Steam, or any OpenID provider from its issuer. */
export const PROVIDER_KINDS = [
  { value: "oidc", label: "OpenID Connect (any provider, from its issuer URL)" },
  { value: "github", label: "GitHub" },
  { value: "discord", label: "Discord" },
  { value: "twitch", label: "Twitch" },
  { value: "steam", label: "Steam (OpenID 2.0)" },
] as const;

const text = (body: unknown, name: string, max = 2000) => {
  const value = field(body, name, max)?.trim();
  return value ? value : undefined;
};

/** The form's values for showing it again (never the client secret). */
function formValues(body: unknown) {
  return Object.fromEntries(
    ["kind", "slug", "display_name", "issuer", "client_id", "scopes", "client_ids"].map((k) => [
      k,
      field(body, k, 2000) ?? "",
    ]),
  ) as Record<string, string>;
}

function createInput(body: unknown) {
  const kind = field(body, "kind", 20) ?? "";
  const type = kind === "oidc" ? "oidc" : kind === "steam" ? "steam" : "oauth2";
  const scopes = listField(body, "scopes");
  const clientIds = listField(body, "client_ids");
  const input: Record<string, unknown> = { slug: text(body, "slug", 100) ?? "", type };
  if (type === "oauth2") input.preset = kind;
  const optional: Array<[string, string]> = [
    ["displayName", "display_name"],
    ["issuer", "issuer"],
    ["clientId", "client_id"],
  ];
  for (const [key, name] of optional) {
    const value = text(body, name);
    if (value !== undefined) input[key] = value;
  }
  const secret = field(body, "client_secret", 2000);
  if (secret) input.clientSecret = secret;
  if (scopes.length) input.scopes = scopes;
  input.trustedForEmail = field(body, "trusted_for_email") === "on";
  if (clientIds.length) input.clientIds = clientIds;
  return input;
}

function updateInput(body: unknown, type: string) {
  const input: Record<string, unknown> = {
    trustedForEmail: field(body, "trusted_for_email") === "on",
    scopes: listField(body, "scopes"),
  };
  const name = text(body, "display_name", 200);
  if (name !== undefined) input.displayName = name;
  if (type === "oidc") {
    const issuer = text(body, "issuer");
    if (issuer !== undefined) input.issuer = issuer;
  }
  if (type !== "steam") {
    const clientId = text(body, "client_id", 600);
    if (clientId !== undefined) input.clientId = clientId;
    const secret = field(body, "client_secret", 2000);
    if (secret) input.clientSecret = secret;
  }
  const clientIds = listField(body, "client_ids");
  input.clientIds = clientIds.length ? clientIds : null;
  return input;
}

/**
 * Upstream sign-in providers in the console (#15, #14): the list, create from a preset, Steam or any OpenID provider's
 * issuer, edit (name, client id, scopes, apps, trusted for email), a new client secret (write-only: never shown back),
 * disable and enable. Reads: support may; changes: admin. The library functions the admin API and the CLI use.
 */
export async function providerPages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);
  const form = formConfig(app);

  async function showList(
    request: FastifyRequest,
    reply: FastifyReply,
    admin: ConsoleAdmin,
    extra: Record<string, unknown> = {},
    shown?: ShownError,
  ) {
    const data = {
      title: "Sign-in providers",
      active: "/admin/providers",
      notice: noticeFrom(request),
      providers: (await listProviders(app.ctx)).map(providerView),
      kinds: PROVIDER_KINDS,
      callbackPattern: callbackUrl(app.ctx, { slug: "<slug>" }),
      values: { kind: "oidc" },
      ...extra,
    };
    return shown
      ? renderWithError(request, reply, admin, "providers", data, shown)
      : renderConsole(request, reply, admin, "providers", data);
  }

  async function showOne(
    request: FastifyRequest,
    reply: FastifyReply,
    admin: ConsoleAdmin,
    slug: string,
    shown?: ShownError,
  ) {
    const provider = providerView(await getProvider(app.ctx, slug));
    const data = {
      title: provider.display_name,
      active: "/admin/providers",
      notice: noticeFrom(request),
      provider,
      callback: callbackUrl(app.ctx, provider),
    };
    return shown
      ? renderWithError(request, reply, admin, "provider", data, shown)
      : renderConsole(request, reply, admin, "provider", data);
  }

  app.get("/admin/providers", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    return showList(request, reply, admin);
  });

  app.post("/admin/providers", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    try {
      const created = await createProvider(app.ctx, createInput(request.body), admin.actor);
      return seeOther(reply, `${pageOf(created.slug)}?notice=provider_created`);
    } catch (error) {
      const shown = actionErrorOf(error);
      if (!shown) throw error;
      return showList(request, reply, admin, { values: formValues(request.body) }, shown);
    }
  });

  app.get("/admin/providers/:slug", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    return showOne(request, reply, admin, slugOf(request));
  });

  app.post("/admin/providers/:slug", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const before = await getProvider(app.ctx, slugOf(request));
    try {
      await updateProvider(app.ctx, before.slug, updateInput(request.body, before.kind), admin.actor);
    } catch (error) {
      const shown = actionErrorOf(error);
      if (!shown) throw error;
      return showOne(request, reply, admin, before.slug, shown);
    }
    return seeOther(reply, `${pageOf(before.slug)}?notice=provider_saved`);
  });

  for (const action of ["disable", "enable"] as const) {
    app.post(`/admin/providers/:slug/${action}`, form, async (request, reply) => {
      const admin = await consoleAccess(request, reply, "admin");
      if (!admin) return reply;
      const done = await setProviderEnabled(app.ctx, slugOf(request), action === "enable", admin.actor);
      return seeOther(reply, `${pageOf(done.slug)}?notice=provider_${action}d`);
    });
  }
}
